"""Which heatmaps a run makes, and their titles; the drawing is in :mod:`plot`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from attncli.files import ensure_dir
from attncli.labels import count
from attncli.core.pipeline import Result
from attncli.figures.heatmap import Panel, render
from attncli.figures.style import Style

MATRICES = ("A_prime", "A")


def formula(result: Result, matrix: str) -> str:
    s = result.settings
    scores = "KᵀQ/√q" if s.scale else "KᵀQ"
    if s.causal:
        scores += ", causal"
    if matrix == "A":
        return f"A = {scores}"
    temp = "/T" if s.temperature != 1.0 else ""
    return f"A′ = {s.norm}({scores}{temp})"


def bounded(result: Result, matrix: str) -> bool:
    """Weights in [0, 1]: one colour scale for every head by default."""
    return matrix == "A_prime" and result.settings.norm in ("softmax", "sparsemax")


def cbar_label(matrix: str) -> str:
    return "A′[i, j]" if matrix == "A_prime" else "A[i, j]  (score)"


def run_figures(
    result: Result,
    out: str | Path,
    style: Style,
    matrix: str = "A_prime",
    sentence: Optional[int] = None,
    mean_heads: bool = False,
) -> list[Path]:
    """One heatmap per head (and ``heads.<fmt>`` for several), plus the mean over heads."""
    out = ensure_dir(out)
    what = formula(result, matrix)
    panels = [
        Panel(getattr(h, matrix), f"head {k + 1}: {what}", f"head_{k + 1}", f"head {k + 1}")
        for k, h in enumerate(result.heads)
    ]
    kwargs = dict(bounded=bounded(result, matrix), cbar_label=cbar_label(matrix), sentence=sentence)
    grid_title = f"{count(len(panels), 'head')}: {what}"
    files = render(panels, result.tokens.tokens, out, style, grid_title=grid_title, **kwargs)
    if mean_heads:
        mean = np.mean([p.matrix for p in panels], axis=0)
        single = replace(style, grid=False)
        files += render(
            [Panel(mean, f"mean of {count(len(panels), 'head')}: {what}", "mean_heads")],
            result.tokens.tokens,
            out,
            single,
            **kwargs,
        )
    return files
