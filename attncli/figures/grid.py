"""The overview: every panel of a result in one figure (``heads.<fmt>``, ``model.<fmt>``,
``compare``), drawn as images placed in inches in one axes, with one colour bar (or one
per panel), the outer panels' token labels, and a title that fits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from attncli.figures.common import METADATA, PAD, _cmap, _rc, axis_names, cell_text, scales, text_colour, text_width
from attncli.figures.style import Style, check_pixels
from attncli.figures.titles import Fitted, fit_title
from attncli.files import atomic_open


@dataclass(frozen=True)
class Grid:
    """The overview of every panel: its file stem, panel titles, title and shape."""

    stem: str
    titles: list[str]
    title: Optional[str]
    ncols: Optional[int] = None  # None: near-square
    row_names: Optional[list[str]] = None
    groups: Optional[list[int]] = None  # per column: the key/value head its query head reads (GQA)


@dataclass(frozen=True)
class GridPlan:
    """Where everything of the overview goes, in inches."""

    ncols: int
    nrows: int
    left: float
    bottom: float
    right: float
    top: float
    pw: float  # panel width
    ph: float  # panel height
    gap_x: float
    gap_y: float
    width: float
    height: float
    ylab: float  # room for the row token labels
    per_panel: bool  # a colour bar beside every panel (--per-head-scale)
    bar: float  # room for such a colour bar
    suptitle: Optional[Fitted]
    annot_size: float  # 0: no numbers in the cells
    shifts: tuple[float, ...] = ()  # per column: extra room to its left (grouped-query attention)
    rules: tuple[float, ...] = ()  # x of a thin rule between two key/value groups


GROUP_GAP = 0.16  # inches added between two groups of query heads sharing a key/value head


def _group_gaps(grid: Grid, ncols: int) -> tuple[float, ...]:
    """Per column, the extra room to its left: GROUP_GAP at each column whose key/value
    group differs from the one before (nothing without grouped-query attention)."""
    g = grid.groups
    if not g or len(g) != ncols or len(set(g)) < 2:
        return ()
    shifts, total = [0.0], 0.0
    for c in range(1, ncols):
        total += GROUP_GAP if g[c] != g[c - 1] else 0.0
        shifts.append(total)
    return tuple(shifts)


def _grid_plan(
    mats: Sequence[np.ndarray], grid: Grid, style: Style, ticks: list[str], labels: tuple[list[str], list[str]]
) -> GridPlan:
    """The overview's sizes: panels as large as the figure allows, square cells."""
    rows, cols = labels
    H = len(mats)
    ncols = grid.ncols or math.ceil(math.sqrt(H))
    nrows = math.ceil(H / ncols)
    nr, nc = mats[0].shape
    n = max(nr, nc)
    base = style.font_size or 11.0
    small = base * 0.75
    show_labels = n <= 16
    line = base * 0.9 * 1.3 / 72
    ylab = text_width(rows, small) + 0.06 if show_labels else 0.0
    xlab = text_width(cols, small) + 0.06 if show_labels else 0.0
    title_in = line + 0.06 if any(grid.titles) else 0.06
    row_in = line + 0.04 if grid.row_names else 0.0
    left, bottom = PAD + line + 0.08 + row_in + ylab, PAD + line + 0.08 + xlab
    per_panel = style.shared_scale is False and H > 1
    bar = 0.06 + 0.1 + 0.04 + text_width(ticks, small) if per_panel else 0.0
    right = (bar if per_panel else 0.18 + 0.2 + 0.06 + text_width(ticks, base) + 0.08 + base * 1.3 / 72) + PAD
    gap_x, gap_y = 0.15 + bar, title_in + 0.08
    shifts = _group_gaps(grid, ncols)
    extra = shifts[-1] if shifts else 0.0

    def fitted(width: float) -> Optional[Fitted]:
        return fit_title(grid.title, width - 2 * PAD, base * 1.1, style.dpi) if grid.title else None

    def top_of(t: Optional[Fitted]) -> float:
        return PAD + (t.height() + 0.1 if t else 0.0)

    if style.figsize:
        suptitle = fitted(style.figsize[0])
        top = top_of(suptitle)
        side = min(
            (style.figsize[0] - left - right - gap_x * (ncols - 1) - extra) / ncols,
            (style.figsize[1] - bottom - top - gap_y * nrows) / nrows,
        )
        side = max(side, 0.3)
    else:
        side = 3.0 if n <= 24 else 2.4
        side = max(side * min(1.0, 4 / max(ncols, nrows)) ** 0.5, 1.1)
    pw, ph = side * nc / n, side * nr / n  # square cells
    width = style.figsize[0] if style.figsize else left + ncols * pw + (ncols - 1) * gap_x + extra + right
    suptitle = fitted(width)
    top = top_of(suptitle)
    height = style.figsize[1] if style.figsize else bottom + nrows * (ph + gap_y) + top
    cell_pt = pw * 72 / nc
    readable = cell_pt * 0.3 >= ANNOT_SMALLEST
    # numbers in the overview only when asked: a few hundred text artists per grid are most
    # of a batch's drawing time (bench/bench_batch_figures.py); the per-head figures have them
    annotate = bool(style.annotate) and readable
    annot = min(small, cell_pt * 0.3) if annotate else 0.0
    return GridPlan(
        ncols,
        nrows,
        left,
        bottom,
        right,
        top,
        pw,
        ph,
        gap_x,
        gap_y,
        width,
        height,
        ylab,
        per_panel,
        bar,
        suptitle,
        annot,
        shifts,
        tuple(
            left + c * (pw + gap_x) + shifts[c] - (gap_x - bar + GROUP_GAP) / 2  # mid-gap, past any colour bar
            for c in range(1, ncols)
            if shifts and shifts[c] != shifts[c - 1]
        ),
    )


ANNOT_SMALLEST = 4.0  # points: smaller numbers print as dashes, so none are drawn


def grid_figure(
    mats: Sequence[np.ndarray],
    grid: Grid,
    rows: list[str],
    cols: list[str],
    style: Style,
    *,
    bounded: bool,
    cbar_label: str,
    path: Path,
) -> Any:
    """All heads in a near-square grid (or layers × heads), on one colour scale with one
    colour bar, or (``--per-head-scale``) each panel on its own scale with its own bar;
    numbers in the cells with ``--annotate`` when they are large enough to read.

    One axes spans the figure in inches and holds every panel as an image at its own
    place, with the outer panels' token labels as plain text: a figure of 72 small axes
    spends seconds creating and laying out ticks that are never shown. Returns the
    figure (drawn and saved)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shared = Style(**{**style.__dict__, "shared_scale": True})
    per = scales(mats, Style(**{**style.__dict__, "shared_scale": False}), bounded)
    lim = scales(mats, shared, bounded)[0]
    locator = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
    limits = per if style.shared_scale is False else [lim]
    ticks = [f"{t:.3g}" for s in limits for t in locator.tick_values(s.vmin, s.vmax)] + ["−0.00"]
    with matplotlib.rc_context(_rc(style)):
        plan = _grid_plan(mats, grid, style, ticks, (rows, cols))
        check_pixels(plan.width, plan.height, style.dpi)
        fig = Figure(figsize=(plan.width, plan.height), dpi=style.dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, plan.width)
        ax.set_ylim(0, plan.height)
        for k, M in enumerate(mats):
            scale = per[k] if plan.per_panel else lim
            norm = Normalize(scale.vmin, scale.vmax)
            x, y = _grid_panel(
                fig,
                ax,
                plan,
                k,
                M,
                colours=(_cmap(style, scale.signed), norm),
                grid=grid,
                style=style,
                labels=(rows, cols),
            )
            if plan.per_panel:
                _panel_bar(fig, plan, (x, y), (_cmap(style, scale.signed), norm), style)
        _grid_frame(fig, ax, plan, style, (_cmap(style, lim.signed), Normalize(lim.vmin, lim.vmax)), cbar_label)
        _group_rules(ax, plan)
        if style.transparent:
            fig.patch.set_alpha(0.0)
        elif style.image_format == "png":
            from attncli.figures.fastpng import canvas_png

            canvas_png(fig, path, style.dpi, alpha=False)
            return fig
        with atomic_open(path) as fh:
            fig.savefig(
                fh,
                format=style.image_format,
                dpi=style.dpi,
                metadata=METADATA[style.image_format],
                transparent=style.transparent,
            )
    return fig


def _grid_panel(
    fig: Any,
    ax: Any,
    plan: GridPlan,
    k: int,
    M: np.ndarray,
    *,
    colours: tuple[Any, Any],
    grid: Grid,
    style: Style,
    labels: tuple[list[str], list[str]],
) -> tuple[float, float]:
    """Panel k: its image, title, outer token labels, row name and numbers."""
    rows, cols = labels
    cmap, norm = colours
    H = len(grid.titles)
    nr, nc = M.shape
    base = style.font_size or 11.0
    small = base * 0.75
    r, c = divmod(k, plan.ncols)
    pw, ph = plan.pw, plan.ph
    x = plan.left + c * (pw + plan.gap_x) + (plan.shifts[c] if plan.shifts else 0.0)
    y = plan.bottom + (plan.nrows - 1 - r) * (ph + plan.gap_y)
    ax.imshow(
        np.ma.masked_invalid(M),
        cmap=cmap,
        norm=norm,
        extent=(x, x + pw, y, y + ph),
        interpolation="nearest",
        aspect="auto",
    )
    if grid.titles[k]:
        ax.text(x + pw / 2, y + ph + 0.05, grid.titles[k], ha="center", va="bottom", fontsize=base * 0.9)
    if plan.ylab and c == 0:
        for i, label in enumerate(rows):
            ax.text(x - 0.04, y + ph - (i + 0.5) * ph / nr, label, ha="right", va="center", fontsize=small)
    if plan.ylab and k + plan.ncols >= H:
        for j, label in enumerate(cols):
            ax.text(x + (j + 0.5) * pw / nc, y - 0.04, label, ha="center", va="top", rotation=90, fontsize=small)
    if grid.row_names and c == 0:
        ax.text(
            x - plan.ylab - 0.04,
            y + ph / 2,
            grid.row_names[r],
            ha="right",
            va="center",
            rotation=90,
            fontsize=base * 0.9,
        )
    if plan.annot_size:
        colours_of = cmap(norm(M))
        for i in range(nr):
            for j in range(nc):
                ax.text(
                    x + (j + 0.5) * pw / nc,
                    y + ph - (i + 0.5) * ph / nr,
                    cell_text(M[i, j]),
                    ha="center",
                    va="center",
                    fontsize=plan.annot_size,
                    color=text_colour(colours_of[i, j]),
                )
    return x, y


def _group_rules(ax: Any, plan: GridPlan) -> None:
    """A thin rule between two groups of query heads that share a key/value head, from
    the bottom row's panels to the top row's (in the text colour, half strength)."""
    import matplotlib

    if not plan.rules:
        return
    colour = matplotlib.rcParams["text.color"]
    y0, y1 = plan.bottom, plan.bottom + (plan.nrows - 1) * (plan.ph + plan.gap_y) + plan.ph
    for x in plan.rules:
        ax.plot([x, x], [y0, y1], color=colour, linewidth=0.8, alpha=0.55, solid_capstyle="butt")


def _panel_bar(fig: Any, plan: GridPlan, at: tuple[float, float], colours: tuple[Any, Any], style: Style) -> None:
    """A slim colour bar beside one panel (--per-head-scale)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import MaxNLocator

    x, y = at
    W, H = plan.width, plan.height
    cax = fig.add_axes(((x + plan.pw + 0.06) / W, y / H, 0.1 / W, plan.ph / H))
    cmap, norm = colours
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, ticks=MaxNLocator(nbins=4))
    cbar.ax.tick_params(labelsize=(style.font_size or 11.0) * 0.75, length=2, pad=2)
    cbar.outline.set_visible(False)


def _grid_frame(fig: Any, ax: Any, plan: GridPlan, style: Style, colours: tuple[Any, Any], cbar_label: str) -> None:
    """Axis names, the title and (one scale) the shared colour bar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.ticker import MaxNLocator

    base = style.font_size or 11.0
    width, height = plan.width, plan.height
    xlabel, ylabel = axis_names(style.transpose)
    span_w, span_h = width - plan.left - plan.right, height - plan.bottom - plan.top
    ax.text(plan.left + span_w / 2, PAD, f"columns: {xlabel}", ha="center", va="bottom", fontsize=base * 0.9)
    ax.text(
        PAD,
        plan.bottom + span_h / 2,
        f"rows: {ylabel}",
        rotation=90,
        ha="left",
        va="center",
        fontsize=base * 0.9,
    )
    if plan.suptitle:
        ax.text(
            width / 2,
            height - PAD,
            plan.suptitle.text,
            ha="center",
            va="top",
            fontsize=plan.suptitle.size,
            multialignment="center",
        )
    if plan.per_panel:
        return
    cmap, norm = colours
    cax = fig.add_axes(
        ((width - plan.right + 0.18) / width, (plan.bottom + 0.1 * span_h) / height, 0.2 / width, 0.8 * span_h / height)
    )
    cbar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), cax=cax, ticks=MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
    )
    cbar.set_label(cbar_label)
    cbar.outline.set_visible(False)
