"""`attncli compare`: one figure with a panel per setting, on one colour scale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from attncli.figures.fonts import quiet_glyphs
from attncli.figures.grid import Grid, grid_figure
from attncli.figures.select import with_fonts
from attncli.figures.style import Style
from attncli.files import ensure_dir, figure_name
from attncli.labels import token_labels

if TYPE_CHECKING:
    from attncli.core.result import AttentionResult


def compare_figure(
    results: list[tuple[str, AttentionResult]],
    out: str | Path,
    style: Style,
    head: int = 1,
    sentence: Optional[int] = None,
    *,
    notes: Optional[list[str]] = None,
) -> Path:
    """A' of ``head`` under each setting, side by side (one row up to four panels), one
    colour scale (0–1 when every setting's weights lie in [0, 1])."""
    out = ensure_dir(out)
    first = results[0][1]
    tokens = token_labels(first.tokens.tokens)
    mats = [r.A_prime[0, r.heads.index(head)] for _, r in results]
    mats = [m.T for m in mats] if style.transpose else mats
    bounded = all(r.norm in ("softmax", "sparsemax") for _, r in results)
    h = f", head {head}" if first.dims.heads > 1 else ""
    title = style.title or f"A′ under {len(results)} settings{h}: one colour scale"
    ncols = len(results) if len(results) <= 4 else None
    grid = Grid("compare", [name for name, _ in results], title, ncols)
    style = replace(with_fonts(style, [*tokens, title, *grid.titles], notes), shared_scale=True)
    path = out / figure_name("compare", style.image_format, sentence)
    with quiet_glyphs():
        grid_figure(mats, grid, tokens, tokens, style, bounded=bounded, cbar_label="A′[i, j]", path=path)
    return path
