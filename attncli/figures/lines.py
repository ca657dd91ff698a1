"""The line view as a figure (``--view lines``): BertViz's picture, saved for a paper or a slide.

Queries j in the left column, keys i in the right one, and a line from query j to key i
whose opacity (and, when asked, width) is ``A'[i, j]`` — the notes' layout read as a
picture: column j of ``A'`` is the fan of lines leaving query j. Heads are one panel (file)
each, or overlaid in one figure with a colour per head.

Long inputs stay legible: below a weight threshold lines are not drawn (the figure says how
many), labels shrink and, past what fits, are thinned and carry their position. Drawn with
matplotlib's Agg backend and no pyplot; the same themes, sizes and byte-reproducible output
as the heatmaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from attncli.core.result import AttentionResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
from attncli.core.words import count
from attncli.errors import AttnError
from attncli.figures.style import THEMES, Style, check_pixels
from attncli.files import atomic_open, figure_name
from attncli.labels import token_labels

# matplotlib's tab10, also the HTML page's head colours: head h (1-based) gets HEAD_COLOURS[(h - 1) % 10]
HEAD_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
SINGLE = {"light": "#1f5fbf", "dark": "#8ab8ff"}  # one head alone
FADE = 0.12  # opacity factor of the other queries' lines when one query is highlighted
PAD = 0.12  # inches at every edge


def default_threshold(n: int) -> float:
    """Every line up to 32 tokens; above, lines under 0.02 would only be grey fog."""
    return 0.0 if n <= 32 else 0.02


def head_colour(head: int, style: Style, overlay: bool) -> str:
    return HEAD_COLOURS[(head - 1) % len(HEAD_COLOURS)] if overlay else SINGLE[style.theme]


@dataclass(frozen=True)
class Plan:
    """What one figure draws: the tokens kept (0-based), which of them is highlighted, the
    heads and their matrices, the threshold and the note that says what was left out."""

    keep: list[int]
    labels: list[str]
    query: Optional[int]  # 0-based index into the full token list
    heads: list[int]
    matrices: list[np.ndarray]
    threshold: float
    scale: float  # opacity = weight / scale (1 for weights in [0, 1])
    title: str


def kept_tokens(result: AttentionResult, hide_special: bool) -> list[int]:
    """Indices (0-based) of the tokens shown."""
    special = result.tokens.special or [False] * result.n
    keep = [k for k in range(result.n) if not (hide_special and special[k])]
    if not keep:
        raise AttnError("--hide-special: every token is special, nothing is left to draw")
    return keep


def check_query(query: Optional[int], result: AttentionResult, keep: list[int]) -> Optional[int]:
    """``--query`` (1-based) to a 0-based index, refused when out of range or hidden."""
    if query is None:
        return None
    if not 1 <= query <= result.n:
        raise AttnError(f"--query {query}: the input has {count(result.n, 'token')} (counting from 1)")
    if query - 1 not in keep:
        raise AttnError(f"--query {query} is a special token, hidden by --hide-special")
    return query - 1


def opacity_scale(matrices: Sequence[np.ndarray]) -> float:
    top = max((float(np.nanmax(m)) for m in matrices if m.size), default=1.0)
    return max(1.0, top if math.isfinite(top) else 1.0)


def segments(plan: Plan, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, key, weight) of the lines of head ``k`` at or above the threshold, weakest first
    (so the strong lines are drawn on top), as positions in ``plan.keep``."""
    M = np.nan_to_num(plan.matrices[k][np.ix_(plan.keep, plan.keep)], nan=0.0, neginf=0.0)
    i, j = np.nonzero((M >= plan.threshold) & (M > 0))
    w = M[i, j]
    order = np.lexsort((i, j, w))  # by weight, ties in a fixed order: same input, same bytes
    return j[order], i[order], w[order]


class Geometry:
    """Where everything goes, in inches: two label columns with the lines between them."""

    def __init__(self, plan: Plan, style: Style, legend_rows: int) -> None:
        from attncli.figures.common import text_width

        n = len(plan.keep)
        self.base = base = style.font_size or 11.0
        side = min(max(0.24 * n, 2.0), 12.0)
        cell_pt = side * 72.0 / n
        self.tick = min(base * 0.9, max(5.0, cell_pt * 0.8))
        self.step = max(1, math.ceil(self.tick * 1.15 / cell_pt))
        self.shown = list(range(0, n, self.step))
        if plan.query is not None and plan.keep.index(plan.query) not in self.shown:
            self.shown = sorted({*self.shown, plan.keep.index(plan.query)})
        self.texts = [plan.labels[p] if self.step == 1 else f"{plan.keep[p] + 1} {plan.labels[p]}" for p in self.shown]
        label_w = text_width(self.texts, self.tick) * 1.12 + 0.08  # room for the bold highlight
        label_w = max(label_w, text_width(["query j", "key i"], base * 0.9) + 0.04)
        line = base * 1.3 / 72
        self.top = PAD + base * 1.15 * 1.3 / 72 + 0.08 + line + legend_rows * line
        self.bottom = PAD + 2 * base * 0.8 * 1.3 / 72 + 0.1
        gap = max(1.6, min(4.0, side * 0.4))
        if style.figsize:
            W, H = style.figsize
            side = max(0.5, H - self.top - self.bottom)
            gap = max(0.4, W - 2 * (PAD + label_w))
        self.size = (2 * (PAD + label_w) + gap, self.top + side + self.bottom)
        if style.figsize:
            self.size = style.figsize
        W, H = self.size
        self.row = side / n
        self.x_query = (W - gap) / 2  # right edge of the query labels
        self.x_key = (W + gap) / 2  # left edge of the key labels
        self.y_top = H - self.top

    def y(self, position: np.ndarray | int) -> np.ndarray | float:
        """Vertical centre of the token at ``position`` (in the kept tokens)."""
        return self.y_top - (np.asarray(position) + 0.5) * self.row


def _draw_labels(ax: Axes, plan: Plan, g: Geometry, fg: str) -> None:
    for p, text in zip(g.shown, g.texts):
        bold = plan.keep[p] == plan.query
        weight = "bold" if bold else "normal"
        for x, ha, side in ((g.x_query - 0.04, "right", "query"), (g.x_key + 0.04, "left", "key")):
            ax.text(
                x,
                float(g.y(p)),
                text,
                ha=ha,
                va="center",
                fontsize=g.tick,
                color=fg,
                fontweight=weight if side == "query" else "normal",
                parse_math=False,
                gid=f"{side}-{plan.keep[p] + 1}",
            )


def _draw_lines(ax: Axes, plan: Plan, g: Geometry, style: Style, overlay: bool, width: bool) -> int:
    """One LineCollection per head; returns how many lines were left out under the threshold."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgb

    dropped = 0
    for k, head in enumerate(plan.heads):
        q, key, w = segments(plan, k)
        dropped += len(plan.keep) ** 2 - len(w)
        alpha = np.clip(w / plan.scale, 0.0, 1.0)
        if plan.query is not None:
            alpha = np.where(np.asarray(plan.keep)[q] == plan.query, alpha, alpha * FADE)
        rgba = np.zeros((len(w), 4))
        rgba[:, :3] = to_rgb(head_colour(head, style, overlay))
        rgba[:, 3] = alpha
        x0, x1 = g.x_query + 0.02, g.x_key - 0.02
        segs = np.stack([np.stack([np.full(len(w), x0), g.y(q)], 1), np.stack([np.full(len(w), x1), g.y(key)], 1)], 1)
        widths = 0.4 + 2.6 * alpha if width else 1.0
        ax.add_collection(LineCollection(list(segs), colors=rgba, linewidths=widths, gid=f"lines-head-{head}"))
    return dropped


def _note(plan: Plan, dropped: int, hidden: int, width: bool) -> str:
    how = "opacity and width" if width else "opacity"
    parts = [f"line {how} = A′[i, j], key i for query j"]
    if plan.scale != 1.0:
        parts[0] += f" / {plan.scale:.3g}"
    if plan.threshold > 0:
        parts.append(f"{dropped:,} lines under {plan.threshold:g} not drawn")
    if hidden:
        parts.append(f"{count(hidden, 'special token')} hidden")
    return "; ".join(parts)


def _legend(ax: Axes, plan: Plan, g: Geometry, style: Style, rows: int) -> None:
    per_row = math.ceil(len(plan.heads) / rows)
    W = g.size[0]
    for k, head in enumerate(plan.heads):
        r, c = divmod(k, per_row)
        x = W / 2 + (c - (per_row - 1) / 2) * min(0.75, (W - 2 * PAD) / per_row)
        y = g.size[1] - PAD - g.base * 1.15 * 1.3 / 72 - 0.04 - r * g.base * 1.3 / 72
        ax.text(
            x,
            y,
            f"head {head}",
            ha="center",
            va="top",
            fontsize=g.base * 0.8,
            color=head_colour(head, style, True),
            fontweight="bold",
            parse_math=False,
        )


def lines_figure(plan: Plan, style: Style, *, overlay: bool, width: bool, hidden: int = 0) -> Figure:
    """The matplotlib Figure of one plan (drawn, not saved)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from attncli.figures.common import _rc

    legend_rows = math.ceil(len(plan.heads) / 8) if overlay and len(plan.heads) > 1 else 0
    fg = THEMES[style.theme]["fg"]
    with matplotlib.rc_context(_rc(style)):
        g = Geometry(plan, style, legend_rows)
        check_pixels(*g.size, style.dpi)
        fig = Figure(figsize=g.size, dpi=style.dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, g.size[0])
        ax.set_ylim(0, g.size[1])
        W, H = g.size
        ax.text(W / 2, H - PAD, plan.title, ha="center", va="top", fontsize=g.base * 1.15, parse_math=False)
        if legend_rows:
            _legend(ax, plan, g, style, legend_rows)
        heading_y = g.y_top + 0.06
        ax.text(g.x_query, heading_y, "query j", ha="right", va="bottom", fontsize=g.base * 0.9, parse_math=False)
        ax.text(g.x_key, heading_y, "key i", ha="left", va="bottom", fontsize=g.base * 0.9, parse_math=False)
        dropped = _draw_lines(ax, plan, g, style, overlay, width)
        _draw_labels(ax, plan, g, fg)
        ax.text(
            W / 2,
            PAD,
            _note(plan, dropped, hidden, width),
            ha="center",
            va="bottom",
            fontsize=g.base * 0.75,
            wrap=True,
            parse_math=False,
        )
        if style.transparent:
            fig.patch.set_alpha(0.0)
    return fig


def _save(fig: Figure, path: Path, style: Style) -> None:
    import matplotlib

    from attncli.figures.common import METADATA, _rc

    fmt = style.image_format
    with matplotlib.rc_context(_rc(style)), atomic_open(path) as fh:
        fig.savefig(fh, format=fmt, dpi=style.dpi, metadata=METADATA[fmt], transparent=style.transparent)
    fig.clear()


def _title(result: AttentionResult, layer: int, heads: list[int], style: Style) -> str:
    who = f"head {heads[0]}" if len(heads) == 1 else f"heads {', '.join(map(str, heads))}"
    what = f"layer {layer}, {who}" if result.is_model else who
    return f"{style.title} — {what}" if style.title else what


def _stem(result: AttentionResult, layer: int, head: Optional[int]) -> str:
    parts = ["lines"] + ([f"layer_{layer}"] if result.is_model else []) + ([f"head_{head}"] if head else [])
    return "_".join(parts)


def line_figures(
    result: AttentionResult,
    out: Path,
    style: Style,
    *,
    query: Optional[int] = None,
    hide_special: bool = False,
    sentence: Optional[int] = None,
    overlay: bool = False,
    threshold: Optional[float] = None,
    width: bool = False,
) -> list[Path]:
    """Draw the line view of every selected layer and head into ``out``; return the paths.

    ``query`` (1-based) highlights one query's lines; ``overlay`` draws all heads of a layer
    in one figure (``lines.png``, or ``lines_layer_{l}.png`` for a model) with a colour per
    head, else one figure per head (``lines_head_{h}.png``, ``lines_layer_{l}_head_{h}.png``);
    batch line k prefixes ``s{k}_``. ``threshold`` (default: 0 up to 32 tokens, else 0.02)
    leaves out weaker lines, and the figure says how many."""
    style.check()
    keep = kept_tokens(result, hide_special)
    q = check_query(query, result, keep)
    every = token_labels(result.tokens.tokens)
    labels = [every[k] for k in keep]
    thr = default_threshold(len(keep)) if threshold is None else threshold
    if not 0 <= thr < 1:
        raise AttnError(f"--threshold must be at least 0 and below 1, not {thr}")
    scale = opacity_scale([result.A_prime])
    hidden = result.n - len(keep)
    written = []
    for li, layer in enumerate(result.layers):
        groups = [result.heads] if overlay else [[h] for h in result.heads]
        for heads in groups:
            mats = [result.A_prime[li, result.heads.index(h)] for h in heads]
            plan = Plan(keep, labels, q, heads, mats, thr, scale, _title(result, layer, heads, style))
            fig = lines_figure(plan, style, overlay=overlay, width=width, hidden=hidden)
            path = Path(out) / figure_name(
                _stem(result, layer, None if overlay else heads[0]), style.image_format, sentence
            )
            _save(fig, path, style)
            written.append(path)
    return written
