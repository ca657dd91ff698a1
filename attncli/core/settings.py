"""The settings of a run (what `attncli run` and `explain` are given), checked before any
work, each message naming the setting (the CLI names the option)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from attncli.core.attention import NORMS
from attncli.errors import AttnError

Progress = Callable[[int, int], None]


@dataclass
class Settings:
    tokenizer: Optional[str] = None  # None: whitespace, or the tokenizer.json of a model given as embeddings
    special_tokens: bool = True
    embeddings: str = "random"
    oov: str = "random"
    dim: int = 8
    heads: Optional[int] = None  # None: 1, or what --weights says
    q_dim: Optional[int] = None
    v_dim: Optional[int] = None
    weights: Optional[str] = None
    norm: str = "softmax"
    temperature: float = 1.0
    scale: bool = True
    causal: bool = False
    positions: str = "none"
    seed: int = 0
    max_tokens: int = 512
    encoding: str = "utf-8"
    float64: bool = False  # float32 unless the numbers must be proven (explain's check)
    keep_scores: bool = True  # keep A (the scores) besides A'; off when no view reads it

    @property
    def dtype(self) -> type:
        return np.float64 if self.float64 else np.float32

    def check(self) -> None:
        """Refuse settings no run can use, naming the setting (the CLI names the option)."""
        positive = {
            "dim": self.dim,
            "heads": self.heads,
            "q_dim": self.q_dim,
            "v_dim": self.v_dim,
            "max_tokens": self.max_tokens,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise AttnError(f"{name} must be a positive whole number, not {value}", setting=name)
        choices = {"norm": tuple(NORMS), "positions": ("none", "sinusoidal"), "oov": ("random", "zero", "error")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise AttnError(f"{name}: unknown choice {value!r} (choose {', '.join(allowed)})", setting=name)
        if not (self.temperature > 0 and np.isfinite(self.temperature)):
            raise AttnError(f"temperature must be a positive number, not {self.temperature}", setting="temperature")
