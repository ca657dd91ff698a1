"""A result seen through the user's display choices: which matrix (A or A'), whether
special tokens are hidden, and the panels, titles and file stems every view shares.

Views (figures, previews, the line view, the HTML page) read panels from here, so a
`run` result and a `model` result are drawn by the same code: a run is one layer, and
its panels are named ``head_{h}``; a model's are ``layer_{l}_head_{h}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attncli.core.result import AttentionResult
from attncli.core.words import count
from attncli.errors import AttnError

MATRICES = ("A_prime", "A")


@dataclass
class Panel:
    """One heatmap: a matrix in the notes' layout, its title and its file stem."""

    matrix: np.ndarray
    title: str
    stem: str
    short: str = ""  # the title inside a grid ("head 2")


def hide(M: np.ndarray, keep: np.ndarray, renormalise: bool = True) -> np.ndarray:
    """Drop the rows and columns of hidden tokens; renormalise each remaining column."""
    out = M[np.ix_(keep, keep)]
    if renormalise:
        s = out.sum(axis=0, keepdims=True)
        out = np.divide(out, s, out=np.zeros_like(out), where=s > 0)
    return out


@dataclass
class Shown:
    result: AttentionResult
    matrix: str = "A_prime"
    hide_special: bool = False
    keep: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.matrix not in MATRICES:
            raise AttnError(f"matrix: unknown matrix {self.matrix!r} (choose A, A_prime)", setting="matrix")
        special = np.array(self.result.tokens.special, dtype=bool)
        hidden = self.hide_special and bool((~special).any())
        self.keep = ~special if hidden else np.ones(len(special), dtype=bool)

    @property
    def tokens(self) -> list[str]:
        return [t for t, k in zip(self.result.tokens.tokens, self.keep) if k]

    @property
    def note(self) -> str:
        return ", special tokens hidden, columns renormalised" if not self.keep.all() else ""

    def shown(self, M: np.ndarray, weights: bool = True) -> np.ndarray:
        """A matrix as figures show it: hidden tokens dropped (weights renormalised)."""
        return hide(M, self.keep, renormalise=weights) if not self.keep.all() else M

    @property
    def bounded(self) -> bool:
        """Weights in [0, 1]: one colour scale for every head by default."""
        return self.matrix == "A_prime" and self.result.norm in ("softmax", "sparsemax")

    @property
    def cbar_label(self) -> str:
        return "A′[i, j]" if self.matrix == "A_prime" else "A[i, j]  (score)"

    def formula(self) -> str:
        """What the panels show: the run's settings in words, or A′ of a checkpoint."""
        s = self.result.settings
        if s is None:
            return "A′" if self.matrix == "A_prime" else "A"
        scores = "KᵀQ/√q" if s.scale else "KᵀQ"
        if s.causal:
            scores += ", causal"
        if self.matrix == "A":
            return f"A = {scores}"
        temp = "/T" if s.temperature != 1.0 else ""
        return f"A′ = {s.norm}({scores}{temp})"

    def panels(self) -> list[Panel]:
        """One panel per (layer, head) the result holds."""
        r = self.result
        stack = r.A_prime if self.matrix == "A_prime" else r.scores
        weights = self.matrix == "A_prime"
        out = []
        for a, l in enumerate(r.layers):
            for b, h in enumerate(r.heads):
                M = self.shown(stack[a, b], weights)
                if r.is_model:
                    g = f" (K,V {r.dims.group(h)})" if r.dims.groups != r.dims.heads else ""
                    title = f"layer {l}, head {h}{g}: {self.formula()}{self.note}"
                    out.append(Panel(M, title, f"layer_{l}_head_{h}", f"head {h}{g}"))
                else:
                    out.append(Panel(M, f"head {h}: {self.formula()}{self.note}", f"head_{h}", f"head {h}"))
        return out

    def grid(self) -> tuple[str, str, int | None, list[str] | None]:
        """The overview's file stem, title, columns and row names."""
        r = self.result
        if r.is_model:
            assert r.checkpoint is not None
            shape = f"{count(len(r.layers), 'layer')} × {count(len(r.heads), 'head')}"
            title = f"{r.checkpoint.name}: attention of {shape}{self.note}"
            return "model", title, len(r.heads), [f"layer {l}" for l in r.layers]
        return "heads", f"{count(len(r.heads), 'head')}: {self.formula()}{self.note}", None, None

    def mean_panels(self) -> list[Panel]:
        """The mean of A' over every head, per layer."""
        r = self.result
        means = r.head_means()
        H = count(r.dims.heads, "head")
        if r.is_model:
            return [
                Panel(self.shown(means[a]), f"layer {l}: mean of {H}{self.note}", f"layer_{l}_mean")
                for a, l in enumerate(r.layers)
            ]
        return [Panel(self.shown(means[0]), f"mean of {H}: {self.formula()}{self.note}", "mean_heads")]

    def rollout_panel(self) -> list[Panel]:
        r = self.result
        if r.rollout is None:
            return []
        title = f"attention rollout over {count(r.dims.layers, 'layer')}{self.note}"
        return [Panel(self.shown(r.rollout), title, "rollout")]
