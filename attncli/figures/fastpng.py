"""The fast PNG path, behind :class:`HeatmapFigure`'s plain interface (``set``/``save``):
the frame of a figure (tick labels, axis names, colour bar) is drawn once and kept as a
bitmap; each head's cells, cell borders, numbers and title are painted into a copy (one
``uint32`` per pixel, nearest-neighbour like ``imshow``) and encoded. The bytes equal what
the plain path's frame gives (tested); bench/bench_figures.py measures the gain."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from attncli.files import atomic_open


class FastPNG:
    """Mixed into :class:`attncli.figures.heatmap.HeatmapFigure`, whose attributes
    (``fig``, ``ax``, ``im``, ``lines``, ``numbers``, ``title``, ``style``, ``rc``,
    ``shape``, ``cmap``, ``norm``, ``layout``, ``background``) it paints with."""

    fig: Any
    ax: Any
    im: Any
    lines: Any
    numbers: Optional[np.ndarray]
    title: Any
    style: Any
    rc: Any  # matplotlib rc settings (see figures.common._rc)
    shape: tuple[int, int]
    cmap: Any
    norm: Any
    layout: Any
    background: Any
    rgb: Optional[np.ndarray]  # the frame as RGB (opaque figures)

    def _dynamic(self) -> list[Any]:
        raise NotImplementedError

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
            # opaque figures are painted and encoded as RGB: taking the alpha bytes out
            # of every image cost as much as compressing it
            frame = np.asarray(canvas.buffer_rgba())
            self.rgb = None if self.style.transparent else np.ascontiguousarray(frame[..., :3])
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
                ink = np.asarray(sheet.canvas.buffer_rgba())  # type: ignore[attr-defined]  # an Agg canvas
                ys, xs = np.nonzero(ink[..., 3])
                alpha = ink[ys, xs, 3:4].astype(np.float32) / 255.0
                self.line_px = (ys, xs, alpha, ink[ys, xs, :3].astype(np.float32))  # Agg's RGBA is plain

    def _blit(self, path: Path) -> None:
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        self.ax.draw_artist(self.title)
        drawn = np.asarray(canvas.buffer_rgba())
        t, b, l, r = self.box
        cells = np.ascontiguousarray(self.cmap(self.norm(self.im.get_array()), bytes=True))  # nr×nc×4
        if self.rgb is None:  # transparent: RGBA, one uint32 per pixel (a quarter of the indexing work)
            image = np.array(drawn)
            cells32 = cells.view(np.uint32)[..., 0]
            image.view(np.uint32)[t:b, l:r, 0] = np.take(np.take(cells32, self.row_of, axis=0), self.col_of, axis=1)
        else:  # RGB from the frame, the title's rows (above the cells) from the canvas
            image = self.rgb.copy()
            image[:t] = drawn[:t, :, :3]
            h, w = image.shape[:2]
            cells24 = np.ascontiguousarray(cells[..., :3]).reshape(cells.shape[0], -1).view("V3")  # a pixel an item
            painted = np.take(np.take(cells24, self.row_of, axis=0), self.col_of, axis=1)
            image.reshape(h, w * 3).view("V3")[t:b, l:r] = painted
        if self.line_px is not None:
            ys, xs, alpha, rgb = self.line_px
            px = image[ys, xs].astype(np.float32)
            px[:, :3] += (rgb - px[:, :3]) * alpha
            image[ys, xs, :3] = np.round(px[:, :3]).astype(np.uint8)
        if self.numbers is not None:
            self._paint_numbers(image)
        write_png(path, image, self.style.dpi, alpha=self.rgb is None)

    def _paint_numbers(self, rgba: np.ndarray) -> None:
        """Put each cell's number on the bitmap from a cache of rendered strings:
        drawing text is what makes heatmaps slow, and heads share few distinct numbers
        (0.00 … 1.00). Only the numbers' own pixels are touched, all cells at once."""
        from attncli.figures.common import cell_text, text_colour

        M = self.numbers
        assert M is not None
        colours = self.cmap(self.norm(M))
        cells = [(i, j, cell_text(M[i, j])) for i in range(M.shape[0]) for j in range(M.shape[1])]
        cells = [c for c in cells if c[2]]
        if not cells:
            return
        glyphs = self._glyphs({t for _, _, t in cells})
        H, W = rgba.shape[:2]
        centres = self.ax.transData.transform([(j, i) for i, j, _ in cells])
        ys, xs, cover, ink = [], [], [], []
        for (i, j, t), (cx, cy) in zip(cells, centres):
            g = glyphs[t]
            h, w = g.shape
            y0, x0 = int(round(H - cy - h / 2)), int(round(cx - w / 2))
            if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
                continue
            gy, gx, c = _sparse(g)
            ys.append(gy + y0)
            xs.append(gx + x0)
            cover.append(c)
            ink.append(np.full(len(c), 0.0 if text_colour(colours[i, j]) == "#000000" else 255.0, np.float32))
        if ys:
            _blend_at(rgba, (np.concatenate(ys), np.concatenate(xs)), np.concatenate(cover), np.concatenate(ink))

    def _glyphs(self, strings: set[str]) -> dict[str, np.ndarray]:
        """Coverage (0…1) of each string in a cell-sized slot, rendered once per process
        and font: every string is drawn at the same place in its slot (slots an even
        number of pixels apart, text placed in pixels), so a number looks the same
        whichever other numbers were rendered with it."""
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.transforms import IdentityTransform

        (x0, y0), (x1, y1) = self.ax.transData.transform([(0, 0), (1, 1)])
        w, h = int(math.ceil(abs(x1 - x0))), int(math.ceil(abs(y1 - y0)))
        dpi = self.style.dpi
        size = self.layout.annot_size
        font = (tuple(matplotlib.rcParams["font.family"]), size, dpi, w, h)
        missing = sorted(s for s in strings if (s, font) not in _GLYPHS)
        if missing:
            sw, sh = w + (w & 1), h + (h & 1)
            cols = math.ceil(math.sqrt(len(missing)))
            rows = math.ceil(len(missing) / cols)
            sheet = Figure(figsize=(cols * sw / dpi, rows * sh / dpi), dpi=dpi)
            FigureCanvasAgg(sheet)
            sheet.patch.set_alpha(0.0)
            height = sheet.canvas.get_width_height()[1]
            for k, text in enumerate(missing):
                sheet.text(
                    (k % cols) * sw + w / 2,
                    height - ((k // cols) * sh + h / 2),
                    text,
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="black",
                    transform=IdentityTransform(),
                )
            sheet.canvas.draw()
            alpha = np.asarray(sheet.canvas.buffer_rgba())[..., 3].astype(np.float32) / 255.0  # type: ignore[attr-defined]
            for k, text in enumerate(missing):
                r, c = k // cols, k % cols
                _GLYPHS[text, font] = alpha[r * sh : r * sh + h, c * sw : c * sw + w].copy()
        return {s: _GLYPHS[s, font] for s in strings}


_GLYPHS: dict[tuple[str, tuple[Any, ...]], np.ndarray] = {}  # (text, font and slot) -> coverage
_SPARSE: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _sparse(cover: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The covered pixels of a glyph (rows, columns, coverage), once per glyph."""
    key = id(cover)
    if key not in _SPARSE:
        ys, xs = np.nonzero(cover)
        _SPARSE[key] = (ys, xs, cover[ys, xs])
    return _SPARSE[key]


def _blend_at(rgba: np.ndarray, at: tuple[np.ndarray, np.ndarray], cover: np.ndarray, ink: np.ndarray) -> None:
    """Ink (a grey level per pixel) over the bitmap's pixels at ``at`` where ``cover``
    (0…1) says; alpha (RGBA) becomes at least the cover."""
    ys, xs = at
    c = cover[:, None]
    px = rgba[ys, xs].astype(np.float32)
    px[:, :3] += (ink[:, None] - px[:, :3]) * c
    px[:, 3:] = np.maximum(px[:, 3:], c * 255.0)
    rgba[ys, xs] = np.round(px).astype(np.uint8)


PNG_LEVEL = 3  # zlib level: 1-3 cost the same here; 6 is ~2x the time for 7-20 % fewer bytes


def encode_png(rgba: np.ndarray, dpi: float, alpha: bool) -> bytes:
    """A PNG of an h×w×4 bitmap (RGB when ``alpha`` is False: a quarter less to encode),
    every row with the PNG "up" filter (the difference from the row above), which turns
    the rows a heatmap repeats inside each cell into zeros, deflated once at
    :data:`PNG_LEVEL`. Measured against Pillow's encoder (adaptive filters, level 3) on
    attncli's figures: a third of the time, sizes within a few per cent either way; the
    pixels are the same (bench/README.md)."""
    import struct
    import zlib

    h, w = rgba.shape[:2]
    channels = 4 if alpha else 3
    raw = rgba[..., :channels].reshape(h, w * channels)
    rows = np.empty((h, w * channels + 1), dtype=np.uint8)
    rows[:, 0] = 2  # up
    rows[0, 0] = 0  # the first row has nothing above it
    rows[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=rows[1:, 1:])  # uint8: modulo 256, as PNG wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ppm = int(dpi / 0.0254 + 0.5)  # pixels per metre, as Pillow writes the dpi
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if alpha else 2, 0, 0, 0)),
            chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)),
            chunk(b"IDAT", zlib.compress(rows.data, PNG_LEVEL)),
            chunk(b"IEND", b""),
        )
    )


def write_png(path: Path, rgba: np.ndarray, dpi: float, alpha: bool) -> None:
    data = encode_png(rgba, dpi, alpha)
    with atomic_open(path) as fh:
        fh.write(data)


def canvas_png(fig: Any, path: Path, dpi: float, alpha: bool) -> None:
    """Draw a whole Agg figure and write it as :func:`encode_png` does (what ``savefig``
    draws at the figure's own dpi, encoded faster)."""
    fig.canvas.draw()
    write_png(path, np.asarray(fig.canvas.buffer_rgba()), dpi, alpha)
