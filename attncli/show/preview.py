"""Heatmaps in the terminal with Rich: true-colour cells, token labels and a scale.

Without colour (NO_COLOR, or not a terminal) the cells are shades: ' ░▒▓█'.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.style import Style as RichStyle
from rich.text import Text

from attncli.figures.style import Style
from attncli.labels import token_labels
from attncli.view import Shown

SHADES = " ░▒▓█"


def pool(M: np.ndarray, f: int) -> np.ndarray:
    """Mean over f×f blocks (ignoring masked cells) so a long sentence fits the width."""
    if f == 1:
        return M
    n0, n1 = M.shape
    out = np.full((math.ceil(n0 / f), math.ceil(n1 / f)), np.nan)
    for a in range(out.shape[0]):
        for b in range(out.shape[1]):
            block = M[a * f : (a + 1) * f, b * f : (b + 1) * f]
            block = block[np.isfinite(block)]
            if block.size:
                out[a, b] = block.mean()
    return out


def heatmap(
    M: np.ndarray,
    rows: list[str],
    cols: list[str],
    title: str,
    width: int,
    color: bool,
    *,
    cmap_name: str = "viridis",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
) -> Text:
    """One matrix as text: a row per key, a cell (2 or 1 chars) per query."""
    finite = M[np.isfinite(M)]
    lo = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    lo = min(lo, 0.0) if finite.size and finite.min() >= 0 else lo
    hi = hi if hi > lo else lo + 1.0
    label_w = min(max((len(r) for r in rows), default=1), 12)
    room = max(width - label_w - 2, 8)
    cell, f = 2, 1
    if M.shape[1] * 2 > room:
        cell = 1
        f = max(1, math.ceil(M.shape[1] / room))
    P = pool(M, f)
    if f > 1:
        rows = [rows[i * f] + "…" for i in range(P.shape[0])]
    cmap = None
    if color:
        import matplotlib

        cmap = matplotlib.colormaps[cmap_name]
    text = Text(title + "\n", style="bold")
    if f > 1:
        text.append(f"(each cell is the mean of {f}×{f} tokens)\n", style="dim")
    for i, row in enumerate(P):
        text.append(f"{rows[i][:label_w]:>{label_w}} ")
        for x in row:
            text.append(*_cell(x, lo, hi, cell, cmap))
        text.append("\n")
    if f == 1 and cell == 2:
        # column labels: the first letters of each query token, written downwards
        depth = min(max((len(c) for c in cols), default=1), 6)
        for d in range(depth):
            line = " " * (label_w + 1) + "".join(f"{(c[d] if d < len(c) else ' '):<2}" for c in cols)
            text.append(line.rstrip() + "\n", style="dim")
    text.append(" " * (label_w + 1) + f"{lo:.2f} ", style="dim")
    for k in range(12):
        text.append(*_cell(lo + (hi - lo) * k / 11, lo, hi, 1, cmap))
    text.append(f" {hi:.2f}   rows: key i · columns: query j\n", style="dim")
    return text


def _cell(x: float, lo: float, hi: float, width: int, cmap: Any) -> tuple[str, str | RichStyle]:
    if not np.isfinite(x):
        return ("·" * width, "dim")
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    if cmap is None:
        return (SHADES[min(int(t * len(SHADES)), len(SHADES) - 1)] * width, "")
    r, g, b, _ = cmap(t)
    return (" " * width, RichStyle(bgcolor=f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"))


def preview_matrices(
    console: Console,
    mats: list[tuple[str, np.ndarray]],
    tokens: list[str],
    transpose: bool = False,
    cmap: Optional[str] = None,
    shared: bool = True,
) -> None:
    labels = token_labels(tokens, width=12)
    color = console.color_system is not None and not console.no_color
    finite = [m[np.isfinite(m)] for _, m in mats]
    both = np.concatenate(finite) if finite else np.zeros(1)
    signed = both.size and both.min() < 0
    name = cmap or ("RdBu_r" if signed else "viridis")
    for title, M in mats:
        M = M.T if transpose else M
        vmin = vmax = None
        if shared and both.size:
            vmin, vmax = (float(both.min()), float(both.max()))
        if signed:
            top = float(np.abs(both if shared else M[np.isfinite(M)]).max() or 1.0)
            vmin, vmax = -top, top
        console.print(heatmap(M, labels, labels, title, console.width, color, cmap_name=name, vmin=vmin, vmax=vmax))


def preview(console: Console, shown: Shown, style: Style) -> None:
    """Every panel of a result in the terminal, on one scale for bounded weights."""
    mats = [(p.title, p.matrix) for p in shown.panels()]
    shared = style.shared_scale if style.shared_scale is not None else shown.bounded
    preview_matrices(console, mats, shown.tokens, style.transpose, style.cmap, shared)
