"""The one attention result every command returns and every view reads.

``run`` (random or loaded weights, one layer), ``model`` (a checkpoint, many layers) and
``explain`` all produce an :class:`AttentionResult`. Views (the trace tables, statistics,
``--values``, ``--json``, ``--npz``, previews, figures, the HTML page) take it and nothing
else, so a view written once works for every command.

Every matrix is in the notes' layout: columns are tokens; ``A[l, h, i, j] = k^i · q^j``
(keys i down the rows, queries j across the columns), so each column of ``A'`` sums to 1
under softmax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from attncli.core.tokenize import Tokens

if TYPE_CHECKING:
    from attncli.core.settings import Settings


@dataclass(frozen=True)
class Dims:
    """The sizes of the notes (r, q, v, n) and of the stacks (heads, layers)."""

    r: int  # embedding size: I is r×n
    q: int  # query/key size per head
    v: int  # value size per head
    heads: int  # H, query heads per layer
    n: int  # tokens
    layers: int = 1  # L of the model (a run is one layer)
    kv_heads: Optional[int] = None  # G key/value heads (grouped-query attention); None: G = H

    @property
    def groups(self) -> int:
        return self.kv_heads or self.heads

    def group(self, head: int) -> int:
        """The key/value head (1-based) that query head ``head`` (1-based) reads."""
        return (head - 1) // (self.heads // self.groups) + 1


@dataclass(frozen=True)
class ModelInfo:
    """What produced a model result: the checkpoint's folder or file and its config."""

    path: str
    model_type: str
    name: str  # config's _name_or_path (last part), else the folder's name
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttentionResult:
    text: str
    tokens: Tokens
    dims: Dims
    A: Optional[np.ndarray]  # L×H×n×n scores (scaled; masked entries −∞), selected layers and heads;
    # None when no view asked for them (a run's keep_scores=False)
    A_prime: np.ndarray  # L×H×n×n normalised scores, column by column
    layers: list[int]  # 1-based layer of each row of the stacks (a run: [1])
    heads: list[int]  # 1-based head of each column of the stacks
    I: np.ndarray  # r×n, the input (of the first block)
    O: np.ndarray  # r×n, the output (after W^o, or of the last block computed)
    causal: bool = False
    norm: str = "softmax"
    settings: Optional[Settings] = None  # a run's settings (None for a checkpoint)
    checkpoint: Optional[ModelInfo] = None  # a model's checkpoint (None for a run)
    # per head, where the command has them (a run; a model asked for its vectors: the selected
    # heads of its first selected layer): H×q×n, H×q×n, H×v×n, H×v×n
    Q: Optional[np.ndarray] = None
    K: Optional[np.ndarray] = None
    V: Optional[np.ndarray] = None
    O_heads: Optional[np.ndarray] = None
    scale: Optional[float] = None  # a model's score scale (1/√q for most), when its Q, K, V are kept
    layer_input: Optional[np.ndarray] = None  # r×n, the a^i entering that layer's projections
    O_concat: Optional[np.ndarray] = None  # (H·v)×n, a run with several heads
    weights: dict[str, Optional[np.ndarray]] = field(default_factory=dict)  # Wq, Wk, Wv (H×·×r), Wo
    E: Optional[np.ndarray] = None  # r×n token embeddings before positions (when positions are added)
    P: Optional[np.ndarray] = None  # r×n positional encodings
    mean_heads: Optional[np.ndarray] = None  # L×n×n: mean of A' over every head of each layer (when kept)
    rollout: Optional[np.ndarray] = None  # n×n attention rollout through every layer
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.tokens)

    @property
    def is_model(self) -> bool:
        return self.checkpoint is not None

    def pairs(self) -> list[tuple[int, int]]:
        """(layer, head), 1-based, in the stacks' order."""
        return [(l, h) for l in self.layers for h in self.heads]

    @property
    def scores(self) -> np.ndarray:
        """A (L×H×n×n), which a run keeps only when a view reads it."""
        if self.A is None:
            raise ValueError("the scores A were not kept: compute with keep_scores=True")
        return self.A

    def matrix(self, name: str, layer: int, head: int) -> np.ndarray:
        """``A`` or ``A_prime`` of a (1-based) layer and head that the stacks hold."""
        stack = self.A if name == "A" else self.A_prime
        if stack is None:
            raise ValueError("the scores A were not kept: compute with keep_scores=True")
        return stack[self.layers.index(layer), self.heads.index(head)]

    def head_means(self) -> np.ndarray:
        """L×n×n: the mean of A' over every head of each layer in the stacks."""
        if self.mean_heads is not None:
            return self.mean_heads
        if len(self.heads) != self.dims.heads:
            raise ValueError("the mean over heads needs every head: ask for it when computing")
        return self.A_prime.mean(axis=1)
