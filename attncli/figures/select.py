"""Which figures a result makes: one heatmap per (layer, head), the overview grid
(``heads.<fmt>`` for a run, ``model.<fmt>`` for a checkpoint), the mean over heads and
the rollout. The same code for every command; the drawing is in :mod:`heatmap`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from attncli.figures.heatmap import Grid, render
from attncli.figures.style import Style
from attncli.files import ensure_dir
from attncli.view import Shown


def figures(
    shown: Shown, out: str | Path, style: Style, sentence: Optional[int] = None, *, mean_heads: bool = False
) -> list[Path]:
    """Every figure of ``shown``; returns the paths written, heads first."""
    out = ensure_dir(out)
    result = shown.result
    panels = shown.panels()
    stem, title, ncols, row_names = shown.grid()
    titles = [p.short or p.title for p in panels]
    if result.is_model:  # layers × heads: the heads named once, above the first row
        titles = [t if k < len(result.heads) else "" for k, t in enumerate(titles)]
    grid = Grid(stem, titles, style.title or title, ncols, row_names)
    tokens, bounded, label = shown.tokens, shown.bounded, shown.cbar_label
    files = render(panels, tokens, out, style, bounded=bounded, cbar_label=label, sentence=sentence, grid=grid)
    single = replace(style, grid=False)
    if mean_heads:
        files += render(shown.mean_panels(), tokens, out, single, bounded=bounded, cbar_label=label, sentence=sentence)
    rollout = shown.rollout_panel()
    if rollout:
        files += render(rollout, tokens, out, single, bounded=bounded, cbar_label="rollout R[i, j]", sentence=sentence)
    return files
