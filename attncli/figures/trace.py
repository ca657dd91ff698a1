"""The dimension trace as a figure: the chain ``I: r×n → Q, K: q×n, V: v×n → A, A': n×n →
O: v×n`` (→ r×n after W^o) with each matrix drawn to scale, for a slide."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from attncli.core.explain import formulas
from attncli.core.result import AttentionResult
from attncli.figures.explain import Canvas
from attncli.figures.fonts import quiet_glyphs
from attncli.figures.style import THEMES, Style
from attncli.files import ensure_dir, figure_name

# colours per kind of matrix (input, projections, scores, weights, output)
FILL = {"I": "#9ecae1", "Q": "#fdae6b", "K": "#fdae6b", "V": "#a1d99b", "A": "#bcbddc", "A'": "#bcbddc", "O": "#a1d99b"}


def chain(result: AttentionResult) -> list[tuple[str, str, tuple[int, int], str]]:
    """(symbol, formula, numeric shape, symbolic shape) in pipeline order, one head."""
    d, f = result.dims, formulas(result)
    steps = [
        ("I", "[a^1 … a^n]", (d.r, d.n), "r×n"),
        ("Q", f.proj("q", "I"), (d.q, d.n), "q×n"),
        ("K", f.proj("k", "I"), (d.q, d.n), "q×n"),
        ("V", f.proj("v", "I"), (d.v, d.n), "v×n"),
        ("A", f"KᵀQ{f.scale.replace(' ', '')}", (d.n, d.n), "n×n"),
        ("A'", f"{f.norm}(A)", (d.n, d.n), "n×n"),
        ("O", "V A'", (d.v, d.n), "v×n"),
    ]
    if result.O_concat is not None and result.weights.get("Wo") is not None:
        steps.append(("O", f"W^o [O_1; …; O_{d.heads}]", (d.r, d.n), "r×n"))
    return steps


def trace_figure(result: AttentionResult, out: str | Path, style: Style, sentence: Optional[int] = None) -> Path:
    """Write ``trace.<format>``: the matrices of one head side by side, to scale."""
    from matplotlib.patches import Rectangle

    steps = chain(result)
    base = style.font_size or 13.0
    tallest = max(s[2][0] for s in steps)
    widest_total = sum(s[2][1] for s in steps)
    gap = 0.9
    cell = max(0.04, min(0.3, (14.0 - gap * (len(steps) - 1)) / widest_total, 4.5 / tallest))
    span = sum(s[2][1] * cell for s in steps) + gap * (len(steps) - 1)
    width = span + 2.6  # the first and last labels are wider than their blocks
    height = tallest * cell + 2.3
    c = Canvas(style, (max(width, 7.0), height))
    fg = THEMES[style.theme]["fg"]
    x = (c.size[0] - span) / 2
    y = 0.8
    with quiet_glyphs():
        for k, (symbol, formula, (rows, cols), symbolic) in enumerate(steps):
            w, h = cols * cell, rows * cell
            c.ax.add_patch(Rectangle((x, y), w, h, fc=FILL[symbol], ec=fg, lw=0.8))
            c.text(x + w / 2, y + h + 0.1, f"{symbol} = {formula}", ha="center", va="bottom", fontsize=base * 0.8)
            c.text(x + w / 2, y - 0.1, f"{symbolic} = {rows}×{cols}", ha="center", va="top", fontsize=base * 0.8)
            if k + 1 < len(steps):
                c.text(x + w + gap / 2, y + tallest * cell / 2, "→", ha="center", va="center", fontsize=base * 1.3)
            x += w + gap
        d = result.dims
        title = f"dimension trace: r = {d.r}, q = {d.q}, v = {d.v}, n = {d.n}" + (
            f", H = {d.heads} (one head shown)" if d.heads > 1 else ""
        )
        c.text(c.size[0] / 2, c.size[1] - 0.15, style.title or title, ha="center", va="top", fontsize=base * 1.1)
        path = ensure_dir(out) / figure_name("trace", style.image_format, sentence)
        return c.save(path)
