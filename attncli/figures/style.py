"""The figure options of a command (:class:`Style`), checked before anything is drawn.

Kept apart from :mod:`attncli.figures.heatmap` so a command that draws nothing (``--no-plot``)
checks its options without importing the drawing code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from attncli.errors import AttnError

FORMATS = ("png", "svg", "pdf")
SEQUENTIAL = "viridis"  # perceptually uniform and colour-blind safe
DIVERGING = "RdBu_r"  # centred on 0 for signed scores
THEMES = {
    "light": {"bg": "#ffffff", "fg": "#1f1f1f", "line": "#ffffff", "bad": "#d0d0d0"},
    "dark": {"bg": "#16181d", "fg": "#e8e8e8", "line": "#16181d", "bad": "#3b3f47"},
}


MAX_SIDE = 32_768  # pixels a side (Agg's own limit is 65,536)
MAX_PIXELS = 200_000_000  # ~800 MB as RGBA; a 40×30 in poster at 300 dpi is 108 million


def check_pixels(width_in: float, height_in: float, dpi: float) -> None:
    """Refuse a raster figure too large to draw, before trying (it would exhaust memory)."""
    w, h = round(width_in * dpi), round(height_in * dpi)
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise AttnError(
            f"a figure of {w}×{h} pixels (--dpi {dpi:g}) is too large to draw: at most {MAX_SIDE} a side"
            f" and {MAX_PIXELS // 10**6} million pixels; lower --dpi or --figsize"
        )


@dataclass
class Style:
    image_format: str = "png"
    dpi: int = 150
    cmap: Optional[str] = None
    theme: str = "light"
    transparent: bool = False
    annotate: Optional[bool] = None  # None: when the cells are big enough to read
    grid: bool = True  # heads.png with all heads
    transpose: bool = False
    figsize: Optional[tuple[float, float]] = None
    title: Optional[str] = None
    font_size: Optional[float] = None
    vmin: Optional[float] = None
    vmax: Optional[float] = None
    shared_scale: Optional[bool] = None  # None: shared for bounded weights (softmax, sparsemax)

    def check(self) -> None:
        if self.image_format not in FORMATS:
            raise AttnError(f"--image-format: unknown format {self.image_format!r} (choose png, svg, pdf)")
        if self.theme not in THEMES:
            raise AttnError(f"--theme: unknown theme {self.theme!r} (choose light, dark)")
        if not 10 <= self.dpi <= 1200:
            raise AttnError(f"--dpi must be between 10 and 1200, not {self.dpi}")
        if self.figsize is not None and not all(0.5 <= x <= 100 for x in self.figsize):
            raise AttnError(f"--figsize: width and height must be between 0.5 and 100 inches, not {self.figsize}")
        if self.figsize is not None:
            check_pixels(*self.figsize, self.dpi)
        if self.font_size is not None and not 2 <= self.font_size <= 72:
            raise AttnError(f"--font-size must be between 2 and 72, not {self.font_size}")
        for name, value in (("--vmin", self.vmin), ("--vmax", self.vmax)):
            if value is not None and not math.isfinite(value):
                raise AttnError(f"{name} must be a finite number, not {value}")
        if self.vmin is not None and self.vmax is not None and self.vmin >= self.vmax:
            raise AttnError(f"--vmin {self.vmin} must be smaller than --vmax {self.vmax}")
        if self.cmap is not None:
            import matplotlib

            if self.cmap not in matplotlib.colormaps:
                raise AttnError(f"--cmap: unknown colour map {self.cmap!r} (try viridis, magma, cividis, RdBu_r)")
