"""What every figure kind shares: the theme as matplotlib settings, colour maps and
scales, number and text measures, metadata that keeps bytes reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from attncli.figures.style import DIVERGING, SEQUENTIAL, THEMES, Style

PAD = 0.1  # inches at every edge of a figure

METADATA = {  # no dates or versions: same input, same bytes
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
}


@dataclass(frozen=True)
class Scale:
    vmin: float
    vmax: float
    signed: bool


def scales(matrices: Sequence[np.ndarray], style: Style, bounded: bool) -> list[Scale]:
    """Colour limits per matrix: shared across heads for bounded weights (or when asked),
    0–1 for weights in [0, 1] (the same colour is the same weight on every slide; the
    data's maximum with ``--vmax auto``), symmetric about 0 when values are signed,
    overridden by --vmin/--vmax."""
    finite = [m[np.isfinite(m)] for m in matrices]
    signed = any(f.size and f.min() < 0 for f in finite) or (style.vmin is not None and style.vmin < 0)
    shared = style.shared_scale if style.shared_scale is not None else bounded
    groups = [np.concatenate(finite)] * len(finite) if shared else finite
    out = []
    for f in groups:
        top = float(np.abs(f).max()) if f.size else 1.0
        top = top if top > 0 else 1.0
        lo, hi = (-top, top) if signed else (0.0, 1.0 if bounded and not style.vmax_auto else top)
        lo = style.vmin if style.vmin is not None else lo
        hi = style.vmax if style.vmax is not None else hi
        out.append(Scale(lo, hi if hi > lo else lo + 1.0, signed))
    return out


def _cmap(style: Style, signed: bool) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps[style.cmap or (DIVERGING if signed else SEQUENTIAL)]
    return cmap.with_extremes(bad=THEMES[style.theme]["bad"])


def _rc(style: Style) -> Any:  # matplotlib types rc keys as a Literal of every setting
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
        **({"font.family": list(style.families)} if style.families else {}),
        "text.parse_math": False,  # token text and titles are text: "$$" and "$_$" drawn as typed
    }


def text_colour(rgba: Any) -> str:
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
    import matplotlib

    fonts = tuple(matplotlib.rcParams["font.family"])
    return max((_text_width(s, size, fonts) for s in strings), default=0.0) / 72.0


def _text_width(text: str, size: float, fonts: tuple[str, ...]) -> float:
    """Points, measured once per process (a batch meets the same words again and again)."""
    key = (text, size, fonts)
    if key not in _TEXT_WIDTHS:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextToPath

        if not _MEASURE:
            _MEASURE.append(TextToPath())
        got = _MEASURE[0].get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]
        _TEXT_WIDTHS[key] = float(got)
    return _TEXT_WIDTHS[key]


_TEXT_WIDTHS: dict[tuple[str, float, tuple[str, ...]], float] = {}
_MEASURE: list[Any] = []


def axis_names(transpose: bool) -> tuple[str, str]:
    """(x label, y label) in words."""
    q, k = "query j (attending)", "key i (attended to)"
    return (k, q) if transpose else (q, k)
