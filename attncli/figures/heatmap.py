"""Heatmaps of attention matrices, drawn with matplotlib's Agg backend (no pyplot).

Every matrix is drawn in the notes' layout: keys i down the rows, queries j across
the columns, so under softmax each *column* sums to 1. ``transpose`` flips the
picture (and only the picture) to rows = queries.

Speed: the frame of a figure (tick labels, axis names, colour bar) is the same for
every head of a sentence, so it is drawn once; for PNG with one colour scale the
frame is kept as a bitmap and only each head's cells (and numbers) are painted
over it (blitting). Other formats reuse the one figure and only swap the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from attncli.figures.common import (
    METADATA,
    PAD,
    Scale,
    _cmap,
    _rc,
    axis_names,
    cell_text,
    scales,
    text_colour,
    text_width,
)
from attncli.figures.fastpng import FastPNG, canvas_png
from attncli.figures.grid import Grid, grid_figure
from attncli.figures.pool import forks_next, run_jobs, worker_count
from attncli.figures.style import THEMES, Style, check_pixels
from attncli.figures.titles import fit_title, measure, room
from attncli.files import atomic_open, figure_name
from attncli.labels import token_labels
from attncli.view import Panel


class Layout:
    """A square heatmap with its labels, placed by hand in inches.

    Cells stay square; tick labels are thinned so they never overlap; the margins are
    the measured widths of the labels, so nothing is clipped and nothing is wasted."""

    PAD = PAD  # inches at every edge

    def __init__(
        self, rows: list[str], cols: list[str], style: Style, cbar_ticks: Sequence[str], titles: Sequence[str] = ()
    ) -> None:
        n = max(len(rows), len(cols))
        self.base = base = style.font_size or 11.0
        side = min(max(0.42 * n, 3.2), 9.0 if n <= 200 else 10.0)
        if style.figsize:
            side = max(0.5, min(style.figsize[0] - 2.0, style.figsize[1] - 1.2))
        cell_pt = side * 72.0 / n
        self.tick_size = min(base * 0.9, max(6.0, cell_pt * 0.8))
        self.row_step = self.col_step = max(1, math.ceil(self.tick_size * 1.3 / cell_pt))
        self.row_ticks = list(range(0, len(rows), self.row_step))
        self.col_ticks = list(range(0, len(cols), self.col_step))
        # thinned labels carry their position, so a long input can still be read off
        self.row_labels = [rows[i] if self.row_step == 1 else f"{i + 1} {rows[i]}" for i in self.row_ticks]
        self.col_labels = [cols[j] if self.col_step == 1 else f"{j + 1} {cols[j]}" for j in self.col_ticks]
        col_w = text_width(self.col_labels, self.tick_size)
        self.rotate = 0 if len(cols) <= 6 and col_w < side / max(len(cols), 1) * 0.9 else 90
        self.annotate_ok = cell_pt >= 21 and n <= 40
        self.annot_size = min(base * 0.95, cell_pt * 0.3)
        self.lines = n <= 60  # thin lines between cells while they are visible
        line = base * 1.25 / 72  # one line of axis-label text
        tick_line = self.tick_size * 1.25 / 72
        left = self.PAD + line + 0.06 + text_width(self.row_labels, self.tick_size) + 0.06
        bottom = self.PAD + line + 0.06 + (col_w if self.rotate else tick_line) + 0.06
        right = 0.18 + 0.2 + 0.06 + text_width(cbar_ticks, base) + 0.08 + line + self.PAD
        self.title_width = (style.figsize[0] if style.figsize else left + side + right) - 2 * self.PAD
        top = self.PAD + room(titles, self.title_width, base * 1.15, style.dpi) + 0.1
        if style.figsize:  # fit the square into the size asked for
            w, h = style.figsize
            side = max(0.3, min(w - left - right, h - bottom - top))
            self.figsize = (w, h)
            left += (w - left - right - side) / 2
            bottom += (h - bottom - top - side) / 2
        else:
            self.figsize = (left + side + right, bottom + side + top)
        self.side, self.left, self.bottom = side, left, bottom

    def rect(self, x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """Inches to figure fractions."""
        W, H = self.figsize
        return (x / W, y / H, w / W, h / H)


class HeatmapFigure(FastPNG):
    """One figure reused for every head of a sentence."""

    def __init__(
        self,
        rows: list[str],
        cols: list[str],
        style: Style,
        xlabel: str,
        ylabel: str,
        *,
        cbar_label: str,
        scale: Scale,
        others: Sequence[Scale] = (),  # the other heads' limits: room for their colour-bar ticks
        titles: Sequence[str] = (),  # every title this figure will show: room for the longest
    ) -> None:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.style = style
        self.rc = _rc(style)
        with matplotlib.rc_context(self.rc):
            locator = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
            ticks = [t for s in (scale, *others) for t in locator.tick_values(s.vmin, s.vmax)]
            cbar_ticks = [f"{t:.3g}" if abs(t) >= 1e-12 else "0" for t in ticks] + ["−0.00"]
            L = Layout(rows, cols, style, cbar_ticks, titles)
            self.layout = L
            check_pixels(*L.figsize, style.dpi)
            fig = Figure(figsize=L.figsize, dpi=style.dpi)
            FigureCanvasAgg(fig)
            ax = fig.add_axes(L.rect(L.left, L.bottom, L.side, L.side))
            cax = fig.add_axes(L.rect(L.left + L.side + 0.18, L.bottom, 0.2, L.side))
            self.cmap = _cmap(style, scale.signed)
            self.norm = Normalize(scale.vmin, scale.vmax)
            nr, nc = len(rows), len(cols)
            self.shape = (nr, nc)
            self.im = ax.imshow(
                np.ma.masked_invalid(np.zeros((nr, nc))),
                cmap=self.cmap,
                norm=self.norm,
                aspect="auto",
                interpolation="nearest",
            )
            cbar = fig.colorbar(self.im, cax=cax, ticks=locator)
            cbar.set_label(cbar_label)
            cbar.outline.set_visible(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_xticks(L.col_ticks, L.col_labels, rotation=L.rotate, fontsize=L.tick_size)
            ax.set_yticks(L.row_ticks, L.row_labels, fontsize=L.tick_size)
            ax.tick_params(length=0, pad=3)
            ax.set_xlabel(xlabel, labelpad=4)
            ax.set_ylabel(ylabel, labelpad=4)
            self.lines = None
            if L.lines:
                segs = [[(x - 0.5, -0.5), (x - 0.5, nr - 0.5)] for x in range(1, nc)]
                segs += [[(-0.5, y - 0.5), (nc - 0.5, y - 0.5)] for y in range(1, nr)]
                self.lines = LineCollection(segs, colors=THEMES[style.theme]["line"], linewidths=0.6)
                ax.add_collection(self.lines)
            self.annotate = bool(L.annotate_ok if style.annotate is None else style.annotate)
            self._texts: list[list[Any]] = []  # made when first needed (never on the fast PNG path)
            self.numbers: Optional[np.ndarray] = None  # the fast PNG path paints these itself
            W, H = L.figsize
            self.title = fig.text(
                (L.left + L.side / 2) / W,
                (L.bottom + L.side + 0.1) / H,
                "",
                ha="center",
                va="bottom",
                fontsize=L.base * 1.15,
                multialignment="center",
            )
            if style.transparent:
                fig.patch.set_alpha(0.0)
                ax.patch.set_alpha(0.0)
            self.fig, self.ax = fig, ax
            self.background = None

    @property
    def texts(self) -> list[list[Any]]:
        """The numbers in the cells as text artists (empty when not annotated)."""
        if self.annotate and not self._texts:
            import matplotlib

            nr, nc = self.shape
            with matplotlib.rc_context(self.rc):
                size = self.layout.annot_size
                self._texts = [
                    [self.ax.text(j, i, "", ha="center", va="center", fontsize=size) for j in range(nc)]
                    for i in range(nr)
                ]
        return self._texts

    def _dynamic(self) -> list[Any]:
        artists = [self.im]
        if self.lines is not None:
            artists.append(self.lines)
        artists += [t for row in self._texts for t in row]
        return artists + [self.title]

    def set(self, matrix: np.ndarray, title: str, scale: Optional[Scale] = None) -> None:
        if scale is not None:
            self.norm.vmin, self.norm.vmax = scale.vmin, scale.vmax
        self.im.set_data(np.ma.masked_invalid(matrix))
        if self.annotate and self.background is not None:
            self.numbers = matrix  # painted from cached glyphs (FastPNG)
        elif self.annotate:
            colours = self.cmap(self.norm(matrix))
            for i, row in enumerate(self.texts):
                for j, t in enumerate(row):
                    t.set_text(cell_text(matrix[i, j]))
                    t.set_color(text_colour(colours[i, j]))
        self.set_title(title)

    def set_title(self, title: str) -> None:
        """The title wrapped or made smaller to fit, centred over the heatmap unless that
        would push it off the figure."""
        import matplotlib

        L = self.layout
        with matplotlib.rc_context(self.rc):
            fitted = fit_title(title, L.title_width, L.base * 1.15, self.style.dpi)
            half = measure(fitted.text, fitted.size, self.style.dpi) / 2 if fitted.text else 0.0
        W, _ = L.figsize
        x = min(max(L.left + L.side / 2, L.PAD + half), W - L.PAD - half)
        self.title.set_text(fitted.text)
        self.title.set_fontsize(fitted.size)
        self.title.set_x(x / W)

    def save(self, path: Path) -> None:
        import matplotlib

        fmt = self.style.image_format
        with matplotlib.rc_context(self.rc):
            if fmt == "png" and self.background is not None:
                self._blit(path)
                return
            if fmt == "png" and not self.style.transparent:
                canvas_png(self.fig, path, self.style.dpi, alpha=False)
                return
            with atomic_open(path) as fh:
                self.fig.savefig(
                    fh, format=fmt, dpi=self.style.dpi, metadata=METADATA[fmt], transparent=self.style.transparent
                )

    def close(self) -> None:
        self.fig.clear()


@dataclass(frozen=True)
class Frame:
    """What the frame of a result's heatmaps is made of (picklable: a job takes it to a
    drawing process). Every head of a result gets the same frame however the heads are
    shared out: room for every title and every colour-bar tick."""

    rows: list[str]
    cols: list[str]
    style: Style
    cbar_label: str
    titles: list[str]
    limits: list[Scale]

    def key(self) -> tuple[Any, ...]:
        labels, titles = (tuple(self.rows), tuple(self.cols)), tuple(self.titles)
        return (labels, repr(self.style), self.cbar_label, titles, tuple(self.limits))

    def figure(self) -> HeatmapFigure:
        """The frame, drawn once per process: a worker that gets more heads of the same
        result (or the same frame again) paints them into the one it has."""
        key = self.key()
        if key not in _FRAMES:
            _FRAMES.clear()  # one kept: the next result's frame differs
            xlabel, ylabel = axis_names(self.style.transpose)
            fig = HeatmapFigure(
                self.rows,
                self.cols,
                self.style,
                xlabel,
                ylabel,
                cbar_label=self.cbar_label,
                scale=self.limits[0],
                others=self.limits,
                titles=self.titles,
            )
            if self.style.image_format == "png" and len(set(self.limits)) == 1:
                fig.freeze()
            _FRAMES[key] = fig
        return _FRAMES[key]


_FRAMES: dict[tuple[Any, ...], HeatmapFigure] = {}


def forget() -> None:
    """Drop what this process has kept between figures (frames, glyphs, text widths), as
    a new process starts: for measuring one command's work (bench/bench_figures.py)."""
    from attncli.figures import common, fastpng, titles

    for cache in (_FRAMES, fastpng._GLYPHS, fastpng._SPARSE, titles._WIDTHS, common._TEXT_WIDTHS):
        cache.clear()


def draw_heads(frame: Frame, picks: Sequence[int], mats: Sequence[np.ndarray], paths: Sequence[Path]) -> list[Path]:
    """Heads ``picks`` (indices into the frame's titles and limits) of one result, each
    matrix to its path; a drawing job."""
    fig = frame.figure()
    one_scale = len(set(frame.limits)) == 1
    for k, M, path in zip(picks, mats, paths):
        fig.set(M, frame.titles[k], None if one_scale else frame.limits[k])
        fig.save(path)
    return list(paths)


def draw_overview(mats: Sequence[np.ndarray], grid: Grid, frame: Frame, bounded: bool, path: Path) -> list[Path]:
    """The overview of one result (``heads.<fmt>``, ``model.<fmt>``); a drawing job."""
    style, rows, cols = frame.style, frame.rows, frame.cols
    grid_figure(mats, grid, rows, cols, style, bounded=bounded, cbar_label=frame.cbar_label, path=path)
    return [path]


def render(
    panels: Sequence[Panel],
    tokens: list[str],
    out: Path,
    style: Style,
    *,
    bounded: bool = True,
    cbar_label: str = "A′[i, j]",
    sentence: Optional[int] = None,
    grid: Optional[Grid] = None,
) -> list[Path]:
    """Draw each panel to ``out/<stem>.<format>`` and, with more than one panel and
    ``style.grid``, all of them in ``heads.<format>``. Returns the paths written.

    With many panels the work is shared among the drawing processes of the command's
    pool (the overview and groups of heads as separate jobs, handed to whichever process
    is free); the files are the same bytes either way."""
    labels = token_labels(tokens)
    mats = [p.matrix.T if style.transpose else p.matrix for p in panels]
    titles = [_title(style, p.title) for p in panels]
    frame = Frame(labels, labels, style, cbar_label, titles, scales(mats, style, bounded))
    ext = style.image_format
    paths = [out / figure_name(p.stem, ext, sentence) for p in panels]
    # In a batch each sentence is one job of the command's pool (cli/flow.py): here, serially.
    workers = worker_count(len(panels)) if sentence is None else 1
    jobs: list[tuple[Callable[..., list[Path]], tuple[Any, ...]]] = []
    if grid is not None and style.grid and len(panels) > 1:  # first: the largest single job
        jobs.append((draw_overview, (mats, grid, frame, bounded, out / figure_name(grid.stem, ext, sentence))))
    chunks = max(1, min(4 * workers, len(panels) // 6)) if workers > 1 else 1
    for c in range(chunks):
        picks = list(range(len(panels)))[c::chunks]
        jobs.append((draw_heads, (frame, picks, [mats[k] for k in picks], [paths[k] for k in picks])))
    if len(jobs) > 1 and forks_next(workers):
        frame.figure()  # drawn once here: the processes about to be forked share it
    written = [p for done in run_jobs(jobs, workers) for p in done]
    order = {p: k for k, p in enumerate(paths)}
    written.sort(key=lambda p: order.get(p, len(order)))
    return written


def _title(style: Style, title: str) -> str:
    """--title replaces the default title, in every figure alike."""
    return style.title or title
