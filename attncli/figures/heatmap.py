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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from attncli import stop
from attncli.errors import AttnError
from attncli.figures.style import DIVERGING, SEQUENTIAL, THEMES, Style, check_pixels
from attncli.files import atomic_open, figure_name
from attncli.labels import token_labels
from attncli.view import Panel

METADATA = {  # no dates or versions: same input, same bytes
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
}


@dataclass(frozen=True)
class Grid:
    """The overview of every panel: its file stem, panel titles, title and shape."""

    stem: str
    titles: list[str]
    title: Optional[str]
    ncols: Optional[int] = None  # None: near-square
    row_names: Optional[list[str]] = None


@dataclass(frozen=True)
class Scale:
    vmin: float
    vmax: float
    signed: bool


def scales(matrices: Sequence[np.ndarray], style: Style, bounded: bool) -> list[Scale]:
    """Colour limits per matrix: shared across heads for bounded weights (or when asked),
    symmetric about 0 when values are signed, overridden by --vmin/--vmax."""
    finite = [m[np.isfinite(m)] for m in matrices]
    signed = any(f.size and f.min() < 0 for f in finite) or (style.vmin is not None and style.vmin < 0)
    shared = style.shared_scale if style.shared_scale is not None else bounded
    groups = [np.concatenate(finite)] * len(finite) if shared else finite
    out = []
    for f in groups:
        top = float(np.abs(f).max()) if f.size else 1.0
        top = top if top > 0 else 1.0
        lo, hi = (-top, top) if signed else (0.0, top)
        lo = style.vmin if style.vmin is not None else lo
        hi = style.vmax if style.vmax is not None else hi
        out.append(Scale(lo, hi if hi > lo else lo + 1.0, signed))
    return out


def _cmap(style: Style, signed: bool):
    import matplotlib

    cmap = matplotlib.colormaps[style.cmap or (DIVERGING if signed else SEQUENTIAL)]
    return cmap.with_extremes(bad=THEMES[style.theme]["bad"])


def _rc(style: Style) -> dict:
    t = THEMES[style.theme]
    base = style.font_size or 11.0
    return {
        "figure.facecolor": t["bg"],
        "axes.facecolor": t["bg"],
        "savefig.facecolor": t["bg"],
        "text.color": t["fg"],
        "axes.labelcolor": t["fg"],
        "axes.edgecolor": t["fg"],
        "xtick.color": t["fg"],
        "ytick.color": t["fg"],
        "font.size": base,
        "axes.titlesize": base * 1.15,
        "axes.labelsize": base,
        "svg.hashsalt": "attncli",
        "svg.fonttype": "path",
        "pdf.fonttype": 42,
        "image.interpolation": "nearest",
        "text.parse_math": False,  # token text and titles are text: "$$" and "$_$" drawn as typed
    }


def text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    r, g, b = np.asarray(rgba)[:3]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if lum > 0.45 else "#ffffff"


def cell_text(x: float) -> str:
    if not np.isfinite(x):
        return ""
    return f"{x:.2f}" if abs(x) < 9.995 else f"{x:.1f}" if abs(x) < 99.95 else f"{x:.0f}"


def text_width(strings: Sequence[str], size: float) -> float:
    """The widest of ``strings`` at ``size`` points, in inches (measured, not guessed)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure, prop = TextToPath(), FontProperties(size=size)
    return max((measure.get_text_width_height_descent(s, prop, ismath=False)[0] for s in strings), default=0.0) / 72.0


class Layout:
    """A square heatmap with its labels, placed by hand in inches.

    Cells stay square; tick labels are thinned so they never overlap; the margins are
    the measured widths of the labels, so nothing is clipped and nothing is wasted."""

    PAD = 0.1  # inches at every edge

    def __init__(self, rows: list[str], cols: list[str], style: Style, cbar_ticks: Sequence[str]) -> None:
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
        top = self.PAD + base * 1.15 * 1.3 / 72 + 0.1
        right = 0.18 + 0.2 + 0.06 + text_width(cbar_ticks, base) + 0.08 + line + self.PAD
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


class HeatmapFigure:
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
            L = Layout(rows, cols, style, cbar_ticks)
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
            self.texts = []
            annotate = L.annotate_ok if style.annotate is None else style.annotate
            if annotate:
                self.texts = [
                    [ax.text(j, i, "", ha="center", va="center", fontsize=L.annot_size) for j in range(nc)]
                    for i in range(nr)
                ]
            W, H = L.figsize
            self.title = fig.text(
                (L.left + L.side / 2) / W,
                (L.bottom + L.side + 0.1) / H,
                "",
                ha="center",
                va="bottom",
                fontsize=L.base * 1.15,
            )
            if style.transparent:
                fig.patch.set_alpha(0.0)
                ax.patch.set_alpha(0.0)
            self.fig, self.ax = fig, ax
            self.background = None
            self.glyph_cache: dict[str, np.ndarray] = {}

    def _dynamic(self) -> list:
        artists = [self.im]
        if self.lines is not None:
            artists.append(self.lines)
        artists += [t for row in self.texts for t in row]
        return artists + [self.title]

    def set(self, matrix: np.ndarray, title: str, scale: Optional[Scale] = None) -> None:
        if scale is not None:
            self.norm.vmin, self.norm.vmax = scale.vmin, scale.vmax
        self.im.set_data(np.ma.masked_invalid(matrix))
        if self.texts:
            colours = self.cmap(self.norm(matrix))
            for i, row in enumerate(self.texts):
                for j, t in enumerate(row):
                    t.set_text(cell_text(matrix[i, j]))
                    t.set_color(text_colour(colours[i, j]))
        self.title.set_text(title)

    def save(self, path: Path) -> None:
        import matplotlib

        fmt = self.style.image_format
        with matplotlib.rc_context(self.rc):
            if fmt == "png" and self.background is not None:
                self._blit(path)
                return
            with atomic_open(path) as fh:
                self.fig.savefig(
                    fh, format=fmt, dpi=self.style.dpi, metadata=METADATA[fmt], transparent=self.style.transparent
                )

    def freeze(self) -> None:
        """Draw the frame once (tick labels, axis names, colour bar) and keep it as a
        bitmap; each head then only paints its cells, lines, numbers and title into a
        copy (PNG with one colour scale)."""
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with matplotlib.rc_context(self.rc):
            canvas = self.fig.canvas
            hidden = self._dynamic()
            for a in hidden:
                a.set_visible(False)
            canvas.draw()
            self.background = canvas.copy_from_bbox(self.fig.bbox)
            for a in hidden:
                a.set_visible(True)
            # which buffer pixels show which cell (nearest, as imshow draws them)
            width, height = canvas.get_width_height()
            nr, nc = self.shape
            (x0, y0), (x1, y1) = self.ax.transData.transform([(-0.5, nr - 0.5), (nc - 0.5, -0.5)])
            top, bottom = height - y1, height - y0
            self.box = (int(round(top)), int(round(bottom)), int(round(x0)), int(round(x1)))
            t, b, l, r = self.box
            self.row_of = np.clip(((np.arange(t, b) + 0.5 - top) / (bottom - top) * nr).astype(int), 0, nr - 1)
            self.col_of = np.clip(((np.arange(l, r) + 0.5 - x0) / (x1 - x0) * nc).astype(int), 0, nc - 1)
            self.line_px = None
            if self.lines is not None:  # the cell borders, drawn once on a transparent sheet
                sheet = Figure(figsize=self.fig.get_size_inches(), dpi=self.style.dpi)
                FigureCanvasAgg(sheet)
                sheet.patch.set_alpha(0.0)
                ax = sheet.add_axes(self.ax.get_position())
                ax.set_xlim(self.ax.get_xlim())
                ax.set_ylim(self.ax.get_ylim())
                ax.set_axis_off()
                ax.add_collection(
                    type(self.lines)(
                        self.lines.get_segments(),
                        colors=self.lines.get_colors(),
                        linewidths=self.lines.get_linewidths(),
                    )
                )
                sheet.canvas.draw()
                ink = np.asarray(sheet.canvas.buffer_rgba())
                ys, xs = np.nonzero(ink[..., 3])
                alpha = ink[ys, xs, 3:4].astype(np.float32) / 255.0
                self.line_px = (ys, xs, alpha, ink[ys, xs, :3].astype(np.float32))  # Agg's RGBA is plain

    def _blit(self, path: Path) -> None:
        from PIL import Image

        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        self.ax.draw_artist(self.title)
        rgba = np.array(canvas.buffer_rgba())
        t, b, l, r = self.box
        cells = self.cmap(self.norm(self.im.get_array()), bytes=True)  # nr×nc×4
        # one uint32 per pixel: a quarter of the indexing work
        cells32 = np.ascontiguousarray(cells).view(np.uint32)[..., 0]
        rgba.view(np.uint32)[t:b, l:r, 0] = np.take(np.take(cells32, self.row_of, axis=0), self.col_of, axis=1)
        if self.line_px is not None:
            ys, xs, alpha, rgb = self.line_px
            px = rgba[ys, xs].astype(np.float32)
            px[:, :3] += (rgb - px[:, :3]) * alpha
            rgba[ys, xs, :3] = np.round(px[:, :3]).astype(np.uint8)
        if self.texts:
            self._paint_numbers(rgba)
        image = Image.fromarray(rgba)
        if not self.style.transparent:
            image = image.convert("RGB")  # opaque: a quarter less to encode
        with atomic_open(path) as fh:
            image.save(fh, format="png", dpi=(self.style.dpi, self.style.dpi), compress_level=3)

    def _paint_numbers(self, rgba: np.ndarray) -> None:
        """Put each cell's number on the bitmap from a cache of rendered strings:
        drawing text is what makes heatmaps slow, and a sentence's heads share
        few distinct numbers (0.00 … 1.00). Each number is blended into its own slot
        only (no image-sized layers to fill and scan)."""
        cells = [(i, j, t) for i, row in enumerate(self.texts) for j, t in enumerate(row) if t.get_text()]
        glyphs = self._glyphs({t.get_text() for _, _, t in cells})
        H, W = rgba.shape[:2]
        centres = self.ax.transData.transform([(j, i) for i, j, _ in cells])
        for (_, _, t), (cx, cy) in zip(cells, centres):  # only each number's own slot is touched
            g = glyphs[t.get_text()]
            h, w = g.shape
            y0, x0 = int(round(H - cy - h / 2)), int(round(cx - w / 2))
            if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
                continue
            blend(rgba[y0 : y0 + h, x0 : x0 + w], g, 0.0 if t.get_color() == "#000000" else 255.0)

    def _glyphs(self, strings: set[str]) -> dict[str, np.ndarray]:
        """Coverage (0…1) of each string, rendered once, centred in a cell-sized slot."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        missing = sorted(s for s in strings if s not in self.glyph_cache)
        if missing:
            (x0, y0), (x1, y1) = self.ax.transData.transform([(0, 0), (1, 1)])
            w, h = int(math.ceil(abs(x1 - x0))), int(math.ceil(abs(y1 - y0)))
            cols = math.ceil(math.sqrt(len(missing)))
            rows = math.ceil(len(missing) / cols)
            dpi = self.style.dpi
            sheet = Figure(figsize=(cols * w / dpi, rows * h / dpi), dpi=dpi)
            FigureCanvasAgg(sheet)
            sheet.patch.set_alpha(0.0)
            for k, text in enumerate(missing):
                sheet.text(
                    ((k % cols) + 0.5) / cols,
                    1 - ((k // cols) + 0.5) / rows,
                    text,
                    ha="center",
                    va="center",
                    fontsize=self.layout.annot_size,
                    color="black",
                )
            sheet.canvas.draw()
            alpha = np.asarray(sheet.canvas.buffer_rgba())[..., 3].astype(np.float32) / 255.0
            for k, text in enumerate(missing):
                r, c = k // cols, k % cols
                self.glyph_cache[text] = alpha[r * h : (r + 1) * h, c * w : (c + 1) * w]
        return {s: self.glyph_cache[s] for s in strings}

    def close(self) -> None:
        self.fig.clear()


def blend(slot: np.ndarray, cover: np.ndarray, ink: float) -> None:
    """Ink of one grey level over a bitmap slot (h×w×4) where ``cover`` (h×w, 0…1) says;
    pixels without cover keep their bytes."""
    ys, xs = np.nonzero(cover)
    c = cover[ys, xs, None]
    px = slot[ys, xs].astype(np.float32)
    px[:, :3] += (ink - px[:, :3]) * c
    px[:, 3:] = np.maximum(px[:, 3:], c * 255.0)
    slot[ys, xs] = np.round(px).astype(np.uint8)


def axis_names(transpose: bool) -> tuple[str, str]:
    """(x label, y label) in words."""
    q, k = "query j (attending)", "key i (attended to)"
    return (k, q) if transpose else (q, k)


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

    With many panels the work is shared among processes (the grid in one, the heads
    in the others); the files are the same bytes either way."""
    labels = token_labels(tokens)
    rows = cols = labels  # self-attention: the same tokens on both axes, transposed or not
    mats = [p.matrix.T if style.transpose else p.matrix for p in panels]
    limits = scales(mats, style, bounded)
    ext = style.image_format

    def heads(indices: Sequence[int]) -> Callable[[], list[Path]]:
        def draw() -> list[Path]:
            one_scale = len(set(limits)) == 1
            xlabel, ylabel = axis_names(style.transpose)
            fig = HeatmapFigure(
                rows,
                cols,
                style,
                xlabel,
                ylabel,
                cbar_label=cbar_label,
                scale=limits[indices[0]],
                others=[limits[k] for k in indices],
            )
            if ext == "png" and one_scale:
                fig.freeze()
            written = []
            for k in indices:
                fig.set(mats[k], _title(style, panels[k].title), None if one_scale else limits[k])
                path = out / figure_name(panels[k].stem, ext, sentence)
                fig.save(path)
                written.append(path)
            fig.close()
            return written

        return draw

    def overview() -> list[Path]:
        assert grid is not None
        path = out / figure_name(grid.stem, ext, sentence)
        grid_figure(mats, grid, rows, cols, style, bounded=bounded, cbar_label=cbar_label, path=path)
        return [path]

    workers = worker_count(len(panels))
    with_grid = grid is not None and style.grid and len(panels) > 1
    chunks = max(1, min(workers - int(with_grid), len(panels) // 6))
    jobs = [heads(range(len(panels))[c::chunks]) for c in range(chunks)] + ([overview] if with_grid else [])
    written = run_jobs(jobs, parallel=workers > 1)
    order = {p: k for k, p in enumerate(out / figure_name(p.stem, ext, sentence) for p in panels)}
    written.sort(key=lambda p: order.get(p, len(order)))
    return written


def worker_count(panels: int) -> int:
    """Processes worth starting: several only for many panels, where fork exists."""
    import multiprocessing
    import os

    if panels < 4 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def run_jobs(jobs: list[Callable[[], list[Path]]], parallel: bool) -> list[Path]:
    """Run the drawing jobs, each in a forked child process when asked and worth it.

    The children end with the parent: a signal to the parent (Ctrl-C, ``timeout``,
    ``docker stop``, a closed terminal) ends them and waits for them before it exits
    (:mod:`attncli.stop`), and on Linux a child whose parent has died is sent SIGTERM by
    the kernel (PR_SET_PDEATHSIG). A child that is stopped removes its temporary file
    first. Only paths cross back, as JSON."""
    if not parallel or len(jobs) < 2:
        return [p for job in jobs for p in job()]
    started: dict[int, int] = {}  # pid -> the read end of its result pipe
    try:
        for job in jobs:
            with stop.deferred():  # no signal handler runs between fork and the records
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    _child(job, w)
                os.close(w)
                started[pid] = r
                stop.children.add(pid)
        written = []
        for pid in list(started):
            written += _collect(pid, started.pop(pid))
        return written
    finally:
        _end(started)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends this process SIGTERM when its parent dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(143)


def _child(job: Callable[[], list[Path]], w: int) -> None:
    """The forked child (signals still held back): run ``job``, write its paths (or its
    error) as JSON, and leave with os._exit (nothing of the parent's, such as its
    buffered stdout, is run twice)."""
    import json

    code = 0
    try:
        stop.in_child()
        _die_with_parent(os.getppid())
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop.SIGNALS)
        try:
            payload = {"paths": [str(p) for p in job()]}
        except AttnError as exc:
            payload = {"error": exc.message, "code": exc.code}
        except MemoryError:
            payload = {"error": "out of memory while drawing", "code": 1}
        except Exception as exc:  # a bug or an unforeseen failure: the parent says it in one line
            payload = {"error": f"{type(exc).__name__}: {exc}", "code": 1}
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(w, data) :]
    except BaseException:
        code = 1
    os._exit(code)


def _collect(pid: int, r: int) -> list[Path]:
    """The paths one child wrote, once it has ended; its error raised here."""
    import json

    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    stop.children.discard(pid)
    try:
        payload = json.loads(data)
    except ValueError:
        how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else "an error"
        raise AttnError(f"a drawing process ended early ({how})", 1) from None
    if "error" in payload:
        raise AttnError(payload["error"], payload["code"])
    return [Path(p) for p in payload["paths"]]


def _end(started: dict[int, int]) -> None:
    """Stop the children still running (another one failed) and wait for them."""
    import signal

    for pid, r in started.items():
        os.close(r)
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for pid in started:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        stop.children.discard(pid)


def _title(style: Style, title: str) -> str:
    return f"{style.title} — {title}" if style.title else title


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
) -> None:
    """All heads in a near-square grid (or layers × heads) with one shared colour bar.

    One axes spans the figure in inches and holds every panel as an image at its own
    place, with the outer panels' token labels as plain text: a figure of 72 small axes
    spends seconds creating and laying out ticks that are never shown."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    titles, suptitle, row_names = grid.titles, grid.title, grid.row_names
    H = len(mats)
    ncols = grid.ncols or math.ceil(math.sqrt(H))
    nrows = math.ceil(H / ncols)
    shared = Style(**{**style.__dict__, "shared_scale": True})
    lim = scales(mats, shared, bounded)[0]
    nr, nc = mats[0].shape
    n = max(nr, nc)
    base = style.font_size or 11.0
    small = base * 0.75
    show_labels = n <= 16
    locator = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
    ticks = [f"{t:.3g}" for t in locator.tick_values(lim.vmin, lim.vmax)] + ["−0.00"]
    line = base * 0.9 * 1.3 / 72
    ylab = text_width(rows, small) + 0.06 if show_labels else 0.0
    xlab = text_width(cols, small) + 0.06 if show_labels else 0.0
    title_in = line + 0.06 if any(titles) else 0.06
    row_in = line + 0.04 if row_names else 0.0
    left, bottom = Layout.PAD + line + 0.08 + row_in + ylab, Layout.PAD + line + 0.08 + xlab
    top = Layout.PAD + (base * 1.1 * 1.4 / 72 + 0.1 if suptitle else 0.0)
    right = 0.18 + 0.2 + 0.06 + text_width(ticks, base) + 0.08 + base * 1.3 / 72 + Layout.PAD
    gap_x, gap_y = 0.15, title_in + 0.08
    if style.figsize:
        side = min(
            (style.figsize[0] - left - right - gap_x * (ncols - 1)) / ncols,
            (style.figsize[1] - bottom - top - gap_y * nrows) / nrows,
        )
        side = max(side, 0.3)
    else:
        side = 3.0 if n <= 24 else 2.4
        side = max(side * min(1.0, 4 / max(ncols, nrows)) ** 0.5, 1.1)
    pw, ph = side * nc / n, side * nr / n  # square cells
    width = style.figsize[0] if style.figsize else left + ncols * pw + (ncols - 1) * gap_x + right
    height = style.figsize[1] if style.figsize else bottom + nrows * (ph + gap_y) + top
    check_pixels(width, height, style.dpi)
    with matplotlib.rc_context(_rc(style)):
        fig = Figure(figsize=(width, height), dpi=style.dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        cmap, norm = _cmap(style, lim.signed), Normalize(lim.vmin, lim.vmax)
        for k in range(H):
            r, c = divmod(k, ncols)
            x = left + c * (pw + gap_x)
            y = bottom + (nrows - 1 - r) * (ph + gap_y)
            ax.imshow(
                np.ma.masked_invalid(mats[k]),
                cmap=cmap,
                norm=norm,
                extent=(x, x + pw, y, y + ph),
                interpolation="nearest",
                aspect="auto",
            )
            if titles[k]:
                ax.text(x + pw / 2, y + ph + 0.05, titles[k], ha="center", va="bottom", fontsize=base * 0.9)
            if show_labels and c == 0:
                for i, label in enumerate(rows):
                    ax.text(x - 0.04, y + ph - (i + 0.5) * ph / nr, label, ha="right", va="center", fontsize=small)
            if show_labels and k + ncols >= H:
                for j, label in enumerate(cols):
                    ax.text(
                        x + (j + 0.5) * pw / nc, y - 0.04, label, ha="center", va="top", rotation=90, fontsize=small
                    )
            if row_names and c == 0:
                ax.text(
                    x - ylab - 0.04, y + ph / 2, row_names[r], ha="right", va="center", rotation=90, fontsize=base * 0.9
                )
        ax.set_xlim(0, width)
        ax.set_ylim(0, height)
        xlabel, ylabel = axis_names(style.transpose)
        span_w, span_h = width - left - right, height - bottom - top
        ax.text(left + span_w / 2, Layout.PAD, f"columns: {xlabel}", ha="center", va="bottom", fontsize=base * 0.9)
        ax.text(
            Layout.PAD, bottom + span_h / 2, f"rows: {ylabel}", rotation=90, ha="left", va="center", fontsize=base * 0.9
        )
        if suptitle:
            ax.text(width / 2, height - Layout.PAD, suptitle, ha="center", va="top", fontsize=base * 1.1)
        cax = fig.add_axes(
            ((width - right + 0.18) / width, (bottom + 0.1 * span_h) / height, 0.2 / width, 0.8 * span_h / height)
        )
        cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, ticks=locator)
        cbar.set_label(cbar_label)
        cbar.outline.set_visible(False)
        if style.transparent:
            fig.patch.set_alpha(0.0)
        with atomic_open(path) as fh:
            fig.savefig(
                fh,
                format=style.image_format,
                dpi=style.dpi,
                metadata=METADATA[style.image_format],
                transparent=style.transparent,
            )
