"""Which figures a result makes: one heatmap per (layer, head), the overview grid
(``heads.<fmt>`` for a run, ``model.<fmt>`` for a checkpoint), the mean over heads and
the rollout. The same code for every command; the drawing is in :mod:`heatmap`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from attncli.figures.fonts import choose, quiet_glyphs
from attncli.figures.grid import Grid, grid_figure
from attncli.figures.heatmap import Layout, render
from attncli.figures.style import Style
from attncli.files import ensure_dir, figure_name
from attncli.labels import token_labels
from attncli.view import Shown


def with_fonts(style: Style, texts: list[str], notes: Optional[list[str]] = None) -> Style:
    """``style`` with the font list that draws ``texts`` (tokens, titles); a note says
    once which characters no installed font draws."""
    choice = choose(texts, style.font)
    if notes is not None and choice.warning():
        notes.append(choice.warning())  # type: ignore[arg-type]
    return replace(style, families=choice.families)


def readable_numbers(shown: Shown, style: Style, notes: Optional[list[str]] = None) -> Style:
    """``--annotate`` where cells are too small for numbers: none are drawn (they would
    print as dashes), and a note says why."""
    if not style.annotate:
        return style
    labels = token_labels(shown.tokens)
    layout = Layout(labels, labels, style, ["0"])
    if layout.annot_size >= 4.0:
        return style
    if notes is not None:
        notes.append(
            f"--annotate: the cells of {len(labels)} tokens are too small for numbers"
            f" ({layout.annot_size:.1f} pt); none drawn (raise --figsize or leave out tokens)"
        )
    return replace(style, annotate=False)


def figures(
    shown: Shown,
    out: str | Path,
    style: Style,
    sentence: Optional[int] = None,
    *,
    mean_heads: bool = False,
    per_head: bool = True,
    notes: Optional[list[str]] = None,
) -> list[Path]:
    """Every figure of ``shown``; returns the paths written, heads first. ``per_head=False``
    draws only the overview (and the mean and rollout); ``notes`` collects what the
    user should know (undrawable characters, numbers left out)."""
    out = ensure_dir(out)
    result = shown.result
    panels = shown.panels()
    stem, title, ncols, row_names = shown.grid()
    titles = [p.short or p.title for p in panels]
    if result.is_model:  # layers × heads: the heads named once, above the first row
        titles = [t if k < len(result.heads) else "" for k, t in enumerate(titles)]
    texts = [*shown.tokens, style.title or "", title, *(p.title for p in panels)]
    style = readable_numbers(shown, with_fonts(style, texts, notes), notes)
    grouped = result.is_model and result.dims.groups != result.dims.heads
    groups = [result.dims.group(h) for h in result.heads] if grouped else None  # a rule between K,V groups
    grid = Grid(stem, titles, style.title or title, ncols, row_names, groups)
    tokens, bounded, label = shown.tokens, shown.bounded, shown.cbar_label
    with quiet_glyphs():
        if per_head or len(panels) == 1:
            files = render(panels, tokens, out, style, bounded=bounded, cbar_label=label, sentence=sentence, grid=grid)
        else:
            files = [overview(shown, out, style, grid, sentence)]
        single = replace(style, grid=False)
        if mean_heads:
            files += render(
                shown.mean_panels(), tokens, out, single, bounded=bounded, cbar_label=label, sentence=sentence
            )
        rollout = shown.rollout_panel()
        if rollout:
            files += render(
                rollout, tokens, out, single, bounded=bounded, cbar_label="rollout R[i, j]", sentence=sentence
            )
    return files


def overview(shown: Shown, out: Path, style: Style, grid: Grid, sentence: Optional[int]) -> Path:
    """Only the overview of every panel (``model`` without a selection)."""
    labels = token_labels(shown.tokens)
    mats = [p.matrix.T if style.transpose else p.matrix for p in shown.panels()]
    path = out / figure_name(grid.stem, style.image_format, sentence)
    grid_figure(mats, grid, labels, labels, style, bounded=shown.bounded, cbar_label=shown.cbar_label, path=path)
    return path
