"""`explain -o DIR`: the notes' steps for one query as slide figures.

- ``explain_step1_vectors``: q^j, and the keys k^i and values v^i as coloured columns
  (columns are tokens, as in the notes), token j's column outlined;
- ``explain_step2_weights``: bars of α_{j,i} and α'_{j,i} over the keys i;
- ``explain_step3_sum``: b^j as the weighted sum of the v^i, the weights above them;
- ``explain_matrices``: I, Q, K, V, A, A', O drawn to scale with their shapes, column j
  (query j, token j) outlined through every matrix.

Same themes, fonts, formats and byte-for-byte reproducibility as the heatmaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from attncli.core.explain import Explanation, formulas
from attncli.figures.common import METADATA, _cmap, _rc, cell_text, text_colour
from attncli.figures.style import THEMES, Style, check_pixels
from attncli.files import atomic_open, figure_name
from attncli.labels import token_labels

HIGHLIGHT = "#ff7f0e"  # the column of query j (orange reads on viridis, RdBu and both themes)
SLIDE = (12.0, 6.2)  # inches a figure may take before its cells shrink


@dataclass
class Block:
    """One matrix to draw: values, title above, caption below (its shape)."""

    M: np.ndarray
    title: str
    caption: str = ""
    top: Optional[Sequence[str]] = None  # column labels (tokens) above
    left: Optional[Sequence[str]] = None  # row labels (tokens) left
    highlight: Optional[int] = None  # column to outline (0-based)
    bounded: bool = False  # weights in [0, 1]: sequential colours on 0–1


class Canvas:
    """A figure with one axes spanning it in inches, for blocks placed by hand."""

    def __init__(self, style: Style, size: tuple[float, float]) -> None:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.style, self.size = style, size
        self.base = style.font_size or 13.0
        self.rc = _rc(style)
        with matplotlib.rc_context(self.rc):
            check_pixels(*size, style.dpi)
            self.fig = Figure(figsize=size, dpi=style.dpi)
            FigureCanvasAgg(self.fig)
            self.ax = self.fig.add_axes((0, 0, 1, 1))
            self.ax.set_axis_off()
            self.ax.set_xlim(0, size[0])
            self.ax.set_ylim(0, size[1])
            if style.transparent:
                self.fig.patch.set_alpha(0.0)

    def text(self, x: float, y: float, s: str, **kw: Any) -> None:
        import matplotlib

        with matplotlib.rc_context(self.rc):
            self.ax.text(x, y, s, **{"fontsize": self.base, "parse_math": False, **kw})

    def heading(self, s: str) -> None:
        """The slide's title, centred at the top."""
        self.text(self.size[0] / 2, self.size[1] - 0.15, s, ha="center", va="top", fontsize=self.base * 1.15)

    def block(self, b: Block, x: float, y: float, cell: float) -> None:
        """Draw ``b`` with its lower-left corner at (x, y), ``cell`` inches a cell."""
        import matplotlib
        from matplotlib.colors import Normalize
        from matplotlib.patches import Rectangle

        nr, nc = b.M.shape
        w, h = nc * cell, nr * cell
        finite = b.M[np.isfinite(b.M)]
        top = float(np.abs(finite).max()) if finite.size else 1.0
        signed = not b.bounded
        norm = Normalize(0.0, 1.0) if b.bounded else Normalize(-(top or 1.0), top or 1.0)
        cmap = _cmap(self.style, signed)
        with matplotlib.rc_context(self.rc):
            ax = self.ax
            ax.imshow(np.ma.masked_invalid(b.M), cmap=cmap, norm=norm, extent=(x, x + w, y, y + h), aspect="auto")
            ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=0.8, ec=THEMES[self.style.theme]["fg"]))
            cell_pt = cell * 72
            size = min(self.base * 0.7, cell_pt * 0.28)
            if size >= 5.0:
                colours = cmap(norm(b.M))
                for i in range(nr):
                    for j in range(nc):
                        label = cell_text(b.M[i, j]) if np.isfinite(b.M[i, j]) else "−∞"
                        colour = (
                            text_colour(colours[i, j]) if np.isfinite(b.M[i, j]) else THEMES[self.style.theme]["fg"]
                        )
                        ax.text(
                            x + (j + 0.5) * cell,
                            y + h - (i + 0.5) * cell,
                            label,
                            ha="center",
                            va="center",
                            fontsize=size,
                            color=colour,
                            parse_math=False,
                        )
            if b.highlight is not None:
                ax.add_patch(Rectangle((x + b.highlight * cell, y), cell, h, fill=False, lw=2.2, ec=HIGHLIGHT))
            small = label_size(self.base, cell)
            if b.top is not None:
                for j, label in enumerate(b.top):
                    ax.text(
                        x + (j + 0.5) * cell,
                        y + h + 0.05,
                        label,
                        ha="center",
                        va="bottom",
                        rotation=90,
                        fontsize=small,
                        parse_math=False,
                        color=HIGHLIGHT if j == b.highlight else None,
                    )
            if b.left is not None:
                for i, label in enumerate(b.left):
                    ax.text(
                        x - 0.05,
                        y + h - (i + 0.5) * cell,
                        label,
                        ha="right",
                        va="center",
                        fontsize=small,
                        parse_math=False,
                    )
        raise_top = label_room(b.top, label_size(self.base, cell)) if b.top is not None else 0.0
        self.text(x + w / 2, y + h + raise_top + 0.08, b.title, ha="center", va="bottom")
        if b.caption:
            self.text(x + w / 2, y - 0.08, b.caption, ha="center", va="top", fontsize=self.base * 0.8)

    def save(self, path: Path) -> Path:
        import matplotlib

        fmt = self.style.image_format
        with matplotlib.rc_context(self.rc), atomic_open(path) as fh:
            self.fig.savefig(
                fh, format=fmt, dpi=self.style.dpi, metadata=METADATA[fmt], transparent=self.style.transparent
            )
        return path


def label_size(base: float, cell: float) -> float:
    """Token labels no taller than a cell, so they never overlap."""
    return min(base * 0.75, cell * 72 * 0.8)


def label_room(labels: Sequence[str], size: float) -> float:
    """Inches that rotated token labels take above a block."""
    from attncli.figures.common import text_width

    return text_width(list(labels), size) + 0.1


def _cell(rows: int, cols: int, limit: tuple[float, float], largest: float = 0.5) -> float:
    """The largest cell (inches) up to ``largest`` with which rows × cols fit ``limit``."""
    return max(0.06, min(largest, limit[0] / max(cols, 1), limit[1] / max(rows, 1)))


def step1(e: Explanation, style: Style) -> Canvas:
    """q^j, K = [k^1 … k^n] and V = [v^1 … v^n] as coloured columns."""
    f, j, labels = formulas(e.result), e.query, token_labels(e.result.tokens.tokens)
    n = e.result.n
    K, V = np.stack(e.k, axis=1), np.stack(e.v, axis=1)
    q = e.q_j[:, None]
    rows = max(K.shape[0], V.shape[0])
    cell = _cell(rows, 2 * n + 1 + 4, (SLIDE[0] - 1.0, SLIDE[1] - 2.6))
    room = label_room(labels, label_size(style.font_size or 13.0, cell))
    width = 1.0 + (2 * n + 1) * cell + 2 * 0.9
    height = rows * cell + room + 1.7
    c = Canvas(style, (max(width, 7.0), height))
    x0 = (c.size[0] - (2 * n + 1) * cell - 1.8) / 2
    y = 0.7 + (rows - K.shape[0]) * cell
    c.block(
        Block(q, f"q^{j}", f"{f.proj('q', f'a^{j}')}", top=[labels[j - 1]]), x0, 0.7 + (rows - q.shape[0]) * cell, cell
    )
    c.block(
        Block(K, "k^i (columns)", f"k^i = {f.proj('k', 'a^i')}", top=labels, highlight=j - 1), x0 + cell + 0.9, y, cell
    )
    y = 0.7 + (rows - V.shape[0]) * cell
    c.block(
        Block(V, "v^i (columns)", f"v^i = {f.proj('v', 'a^i')}", top=labels, highlight=j - 1),
        x0 + (n + 1) * cell + 1.8,
        y,
        cell,
    )
    c.heading(f"Step 1: query, keys and values for j = {j} ({labels[j - 1]})")
    return c


def step2(e: Explanation, style: Style) -> Canvas:
    """Bars of α_{j,i} (scores) and α'_{j,i} (weights, on 0–1) over the keys i."""
    import matplotlib

    f, j, labels, n = formulas(e.result), e.query, token_labels(e.result.tokens.tokens), e.result.n
    width = min(max(7.5, 0.55 * n + 2.0), 16.0)
    c = Canvas(style, (width, 6.8))
    fg = THEMES[style.theme]["fg"]
    with matplotlib.rc_context(c.rc):
        c.ax.remove()
        top = c.fig.add_axes((0.13, 0.6, 0.83, 0.27))
        bottom = c.fig.add_axes((0.13, 0.16, 0.83, 0.27))
        x = np.arange(n)
        finite = np.isfinite(e.alpha)
        colours = [HIGHLIGHT if i == j - 1 else "#4c78a8" for i in range(n)]
        top.bar(x[finite], e.alpha[finite], color=[colours[i] for i in x[finite]])
        top.axhline(0, color=fg, lw=0.6)
        top.margins(y=0.18)
        for i in x[finite]:
            top.text(
                i,
                e.alpha[i],
                f"{e.alpha[i]:.2f}",
                ha="center",
                va="bottom" if e.alpha[i] >= 0 else "top",
                fontsize=c.base * 0.7,
            )
        for i in x[~finite]:
            top.text(i, 0, "masked", ha="center", va="bottom", rotation=90, fontsize=c.base * 0.7, parse_math=False)
        top.set_ylabel(f"α_{{{j},i}}")
        top.set_title(f"scores α_{{{j},i}} = q^{j} · k^i{f.scale}", fontsize=c.base, parse_math=False)
        bottom.bar(x, e.alpha_prime, color=colours)
        bottom.set_ylim(0, 1)
        bottom.set_ylabel(f"α'_{{{j},i}}")
        bottom.set_title(
            f"weights α'_{{{j},·}} = {f.norm}(α_{{{j},·}}{f.temperature})  (they sum to 1)",
            fontsize=c.base,
            parse_math=False,
        )
        for i in x:
            bottom.text(
                float(i),
                e.alpha_prime[i] + 0.02,
                f"{e.alpha_prime[i]:.2f}",
                ha="center",
                va="bottom",
                fontsize=c.base * 0.7,
            )
        for ax in (top, bottom):
            ax.set_xticks(x, labels, rotation=90 if n > 6 else 0, fontsize=c.base * 0.8)
            ax.set_xlim(-0.6, n - 0.4)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        bottom.set_xlabel("key i")
        c.fig.text(
            0.5,
            0.985,
            f"Step 2: how much query j = {j} ({labels[j - 1]}) attends to each key i",
            ha="center",
            va="top",
            fontsize=c.base * 1.15,
            parse_math=False,
        )
    return c


def step3(e: Explanation, style: Style) -> Canvas:
    """b^j = Σ_i α'_{j,i} v^i: the weights over the value columns, the weighted columns,
    and their sum."""
    j, labels, n = e.query, token_labels(e.result.tokens.tokens), e.result.n
    V = np.stack(e.v, axis=1)
    weighted = V * e.alpha_prime[None, :]
    rows = V.shape[0]
    cell = _cell(rows + 1, 2 * n + 1 + 5, (SLIDE[0] - 1.5, SLIDE[1] - 3.0))
    room = label_room(labels, label_size(style.font_size or 13.0, cell))
    width = (2 * n + 1) * cell + 3.4
    height = (rows + 1) * cell + room + 2.1
    c = Canvas(style, (max(width, 7.0), height))
    x0 = (c.size[0] - ((2 * n + 1) * cell + 2.4)) / 2
    y = 0.7
    weights = Block(e.alpha_prime[None, :], f"α'_{{{j},i}}", top=labels, highlight=j - 1, bounded=True)
    c.block(weights, x0, y + rows * cell + 0.35, cell)
    c.block(Block(V, "", "v^i (columns)", highlight=j - 1), x0, y, cell)
    x1 = x0 + n * cell + 1.2
    c.text(x1 - 0.6, y + rows * cell / 2, "×α' →", ha="center", va="center")
    c.block(Block(weighted, f"α'_{{{j},i}} v^i", "", top=labels), x1, y, cell)
    x2 = x1 + n * cell + 1.2
    c.text(x2 - 0.6, y + rows * cell / 2, "Σ_i →", ha="center", va="center")
    c.block(Block(e.b_j[:, None], f"b^{j}", f"{e.result.dims.v} numbers"), x2, y, cell)
    c.heading(f"Step 3: b^{j} = Σ_i α'_{{{j},i}} v^i, the output for {labels[j - 1]}")
    return c


def matrix_blocks(e: Explanation) -> list[Block]:
    """I, Q, K, V, A, A', O of the head, with formulas and shapes, column j outlined."""
    r, b, j, f = e.result, e.index, e.query - 1, formulas(e.result)
    assert r.Q is not None and r.K is not None and r.V is not None and r.O_heads is not None
    labels = token_labels(r.tokens.tokens)
    I = r.layer_input if r.layer_input is not None else r.I

    def shape(sym: str, M: np.ndarray) -> str:
        return f"{sym} = {M.shape[0]}×{M.shape[1]}"

    out = [
        Block(I, "I = [a^1 … a^n]", shape("r×n", I), top=labels),
        Block(r.Q[b], f"Q = {f.proj('q', 'I')}", shape("q×n", r.Q[b]), top=labels),
        Block(r.K[b], f"K = {f.proj('k', 'I')}", shape("q×n", r.K[b]), top=labels),
        Block(r.V[b], f"V = {f.proj('v', 'I')}", shape("v×n", r.V[b]), top=labels),
        Block(
            r.scores[0, b], f"A = KᵀQ{f.scale.replace(' ', '')}", shape("n×n", r.scores[0, b]), top=labels, left=labels
        ),
        Block(r.A_prime[0, b], f"A' = {f.norm}(A)", shape("n×n", r.A_prime[0, b]), top=labels, bounded=True),
        Block(r.O_heads[b], "O = V A'", shape("v×n", r.O_heads[b]), top=labels),
    ]
    out[4].left = labels  # A's rows are keys: the one block with row labels
    for block in out:
        block.highlight = j
    return out


def rows_of(blocks: Sequence[Block], cell: float, limit: float, gap: float) -> list[list[Block]]:
    """Blocks dealt into rows no wider than ``limit`` inches."""
    rows: list[list[Block]] = [[]]
    used = 0.0
    for b in blocks:
        w = b.M.shape[1] * cell + gap
        if rows[-1] and used + w > limit:
            rows.append([])
            used = 0.0
        rows[-1].append(b)
        used += w
    return rows


def to_scale(blocks: Sequence[Block], style: Style, title: str) -> Canvas:
    """Blocks side by side (two rows when they do not fit a slide), one cell size for
    all, so their shapes compare at a glance."""
    base = style.font_size or 13.0
    gap = 0.6 + (0.6 if any(b.left is not None for b in blocks) else 0.0)
    widest = max(b.M.shape[1] for b in blocks)
    tallest = max(b.M.shape[0] for b in blocks)
    total = sum(b.M.shape[1] for b in blocks)
    cell = _cell(tallest, total / 2 + 2 * len(blocks), (SLIDE[0] * 1.3, 8.0), 0.36)
    cell = min(cell, (SLIDE[0] * 1.3) / max(widest, 1))
    rows = rows_of(blocks, cell, SLIDE[0] * 1.3, gap)
    room = label_room(blocks[0].top or [""], label_size(base, cell)) if blocks[0].top is not None else 0.0
    heights = [max(b.M.shape[0] for b in row) * cell for row in rows]
    widths = [sum(b.M.shape[1] * cell for b in row) + gap * (len(row) - 1) for row in rows]
    fig_w = max(max(widths) + 1.2, 6.0)
    band = room + base * 2.6 / 72 + 0.5
    fig_h = sum(heights) + len(rows) * band + 0.8
    c = Canvas(style, (fig_w, fig_h))
    y_top = fig_h - 0.75
    for row, h, w in zip(rows, heights, widths):
        x = (fig_w - w) / 2
        y_top -= room + base * 1.3 / 72 + 0.15
        for b in row:
            bh = b.M.shape[0] * cell
            c.block(b, x, y_top - bh, cell)
            x += b.M.shape[1] * cell + gap
        y_top -= h + base * 1.3 / 72 + 0.35
    c.text(fig_w / 2, fig_h - 0.15, title, ha="center", va="top", fontsize=base * 1.15)
    return c


def matrices(e: Explanation, style: Style) -> Canvas:
    labels = token_labels(e.result.tokens.tokens)
    j = e.query
    title = f"Matrix perspective: all queries at once (column {j}, {labels[j - 1]}, outlined)"
    return to_scale(matrix_blocks(e), style, title)


FIGURES = {
    "explain_step1_vectors": step1,
    "explain_step2_weights": step2,
    "explain_step3_sum": step3,
    "explain_matrices": matrices,
}


def explain_figures(
    e: Explanation, out: Path, style: Style, sentence: Optional[int] = None, *, notes: Optional[list[str]] = None
) -> list[Path]:
    """Write the step figures of ``e`` into ``out``; returns their paths."""
    from attncli.figures.fonts import quiet_glyphs
    from attncli.figures.select import with_fonts

    style = with_fonts(style, [*e.result.tokens.tokens, "α′·Σ→ᵀ√"], notes)
    written = []
    with quiet_glyphs():
        for stem, draw in FIGURES.items():
            written.append(draw(e, style).save(out / figure_name(stem, style.image_format, sentence)))
    return written
