"""The dimension trace as text to paste into slides or notes: a Markdown table or a LaTeX
``tabular`` (``--trace-format markdown|latex``), the same rows as the terminal table."""

from __future__ import annotations

import re

from attncli.core.result import AttentionResult
from attncli.core.trace import collapse_heads, shape_text, trace

FORMATS = ("text", "markdown", "latex")
HEADER = ("head", "matrix", "=", "shape", "size")


def rows(result: AttentionResult) -> list[tuple[str, str, str, str, str]]:
    """(head, matrix, formula, symbolic shape, numeric shape) per step; heads with the same
    shapes once, as h = 1–H."""
    steps, same = collapse_heads(trace(result))
    out = []
    for s in steps:
        if s.head is None:
            head, symbol = "", s.symbol
        elif same:
            head, symbol = f"1–{same}", f"{s.symbol}_h"
        else:
            head, symbol = str(s.head), f"{s.symbol}_{s.head}"
        out.append((head, symbol, s.formula, s.symbolic, shape_text(s.shape)))
    return out


def markdown(result: AttentionResult) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(x: str) -> str:
        return x.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for head, symbol, formula, symbolic, size in rows(result):
        lines.append(f"| {head} | {cell(symbol)} | {cell(formula)} | {symbolic} | {size} |")
    return "\n".join(lines)


_MATH = re.compile(r"[A-Za-z]'?(?:[\^_][A-Za-z0-9]+)+'?|\b[A-Z]\b'?")
_UNICODE = {"ᵀ": r"^\top", "√q": r"\sqrt{q}", "…": r"\dots", "×": r"\times", "·": r"\cdot", "′": "'", "−": "-"}
_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "\\": r"\textbackslash{}"}


def latex_text(s: str) -> str:
    """Plain text with the notes' symbols in math mode: ``W^q I`` → ``$W^{q}$ I``."""
    s = s.replace("ᵀ", "^T")
    out, pos = [], 0
    for m in _MATH.finditer(s):
        out.append(_plain(s[pos : m.start()]))
        out.append("$" + re.sub(r"([\^_])([A-Za-z0-9]+)", r"\1{\2}", m.group(0)) + "$")
        pos = m.end()
    out.append(_plain(s[pos:]))
    return "".join(out).replace("^{T}", r"^{\top}").replace("$$", "")


def _plain(s: str) -> str:
    s = "".join(_SPECIAL.get(c, c) for c in s)
    for k, v in _UNICODE.items():
        s = s.replace(k, f"${v}$")
    return s


def latex(result: AttentionResult) -> str:
    """A ``tabular`` (booktabs rules) ready for a Beamer slide."""
    lines = [
        r"\begin{tabular}{rllll}",
        r"\toprule",
        r"head & matrix & $=$ & shape & size \\",
        r"\midrule",
    ]
    for head, symbol, formula, symbolic, size in rows(result):
        cells = [latex_text(head), latex_text(symbol), latex_text(formula), f"${_tex(symbolic)}$", f"${_tex(size)}$"]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def _tex(shape: str) -> str:
    return shape.replace("×", r" \times ").replace("·", r" \cdot ")
