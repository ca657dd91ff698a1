"""Titles that fit their figure: wrapped onto a second line at word boundaries, then
made smaller, measured with the font that draws them (never guessed from a character
count), so a title never loses its start or its end off the edge of a slide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

LINES = 2  # a title may take two lines before it is made smaller
SMALLEST = 6.0  # points
LINE_HEIGHT = 1.3  # of the font size, matplotlib's 1.2 line spacing and some air


MARGIN = 1.03  # rendering at another size or format may differ by a little


def _renderer(dpi: float) -> Any:
    """An Agg renderer at ``dpi``: text is measured as it will be drawn (hinting makes
    widths depend on the resolution by up to a tenth at small sizes)."""
    if dpi not in _RENDERERS:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1, 1), dpi=dpi)
        _RENDERERS[dpi] = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    return _RENDERERS[dpi]


_RENDERERS: dict[float, Any] = {}


def measure(text: str, size: float, dpi: float = 150) -> float:
    """Width of ``text`` at ``size`` points in inches (widest line) as drawn at ``dpi``,
    with the current font settings (call inside the figure's rc context)."""
    import matplotlib

    fonts = tuple(matplotlib.rcParams["font.family"])
    return max(_width(line, size, dpi, fonts) for line in text.split("\n")) / dpi * MARGIN


def _width(line: str, size: float, dpi: float, fonts: tuple[str, ...]) -> float:
    """Pixels of one line, measured once per process: a batch's figures ask again and
    again about the same titles."""
    key = (line, size, dpi, fonts)
    if key not in _WIDTHS:
        from matplotlib.font_manager import FontProperties

        from attncli.figures.fonts import quiet_glyphs

        with quiet_glyphs():
            got = _renderer(dpi).get_text_width_height_descent(line, FontProperties(size=size), ismath=False)[0]
        _WIDTHS[key] = float(got)
    return _WIDTHS[key]


_WIDTHS: dict[tuple[str, float, float, tuple[str, ...]], float] = {}


def wrap(text: str, width: float, size: float, lines: int = LINES, dpi: float = 150) -> Optional[str]:
    """``text`` broken at spaces into at most ``lines`` lines no wider than ``width``
    inches, or None when it cannot be."""
    out: list[str] = []
    for word in text.split(" "):
        if out and measure(out[-1] + " " + word, size, dpi) <= width:
            out[-1] += " " + word
        else:
            if measure(word, size, dpi) > width:
                return None
            out.append(word)
    return "\n".join(out) if len(out) <= lines else None


def hard_wrap(text: str, width: float, size: float, dpi: float = 150) -> str:
    """At the smallest size: break anywhere (a title of one enormous word)."""
    out = [""]
    for ch in text:
        if out[-1] and measure(out[-1] + ch, size, dpi) > width:
            out.append("")
        out[-1] += ch
    return "\n".join(line.strip() for line in out)


@dataclass(frozen=True)
class Fitted:
    text: str  # with "\n" where it wraps
    size: float  # points

    @property
    def lines(self) -> int:
        return self.text.count("\n") + 1

    def height(self) -> float:
        """Inches the title takes."""
        return self.lines * self.size * LINE_HEIGHT / 72.0


def fit_title(text: str, width: float, size: float, dpi: float = 150) -> Fitted:
    """The largest size up to ``size`` at which ``text`` fits ``width`` inches in at
    most two lines."""
    if not text:
        return Fitted("", size)
    current = size
    while True:
        wrapped = wrap(text, width, current, LINES, dpi)
        if wrapped is not None:
            return Fitted(wrapped, current)
        if current <= SMALLEST:
            return Fitted(hard_wrap(text, width, SMALLEST, dpi), SMALLEST)
        current = max(SMALLEST, current * 0.9)


def room(titles: Sequence[str], width: float, size: float, dpi: float = 150) -> float:
    """Inches to reserve above a figure for the tallest of ``titles``."""
    return max((fit_title(t, width, size, dpi).height() for t in titles if t), default=size * LINE_HEIGHT / 72.0)
