"""Human output with Rich: the dimension trace, the numbers of every matrix, statistics.

Nothing here computes attention; it only lays out what a :class:`Result` holds.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from attncli.labels import token_labels
from attncli.core.pipeline import Result
from attncli.core.trace import shape_text, summary, trace


def trace_table(result: Result, title: Optional[str] = None) -> Table:
    """Every matrix with its symbol, formula, symbolic shape and numeric shape."""
    d = result.dims
    table = Table(
        title=title or f"dimension trace  (r={d['r']}, q={d['q']}, v={d['v']}, n={d['n']}, H={d['heads']})",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("head", justify="right")
    table.add_column("matrix", style="bold cyan")
    table.add_column("=", style="dim")
    table.add_column("shape", justify="center")
    table.add_column("size", justify="right", style="bold")
    last = None
    for step in trace(result):
        if step.head != last and last is not None:
            table.add_section()
        last = step.head
        head = "" if step.head is None else str(step.head)
        symbol = step.symbol if step.head is None else f"{step.symbol}_{step.head}"
        table.add_row(head, Text(symbol), Text(step.formula), step.symbolic, shape_text(step.shape))
    return table


def summary_line(result: Result) -> Text:
    symbolic, numeric = summary(result)
    text = Text()
    text.append("I → Q,K → A,A' → O:  ", style="bold")
    text.append(symbolic)
    text.append("  =  ")
    text.append(numeric, style="bold green")
    if result.dims["heads"] > 1:
        text.append(
            f"   ({result.dims['heads']} heads, merged by W^o)"
            if result.weights.get("Wo") is not None
            else f"   ({result.dims['heads']} heads)"
        )
    return text


def matrix_table(
    title: str, M: np.ndarray, rows: Sequence[str], cols: Sequence[str], precision: int = 3, corner: str = ""
) -> Table:
    table = Table(title=Text(title), title_justify="left", header_style="bold", pad_edge=False)
    table.add_column(Text(corner), style="bold", justify="right")
    for c in cols:
        table.add_column(Text(c), justify="right")
    for label, row in zip(rows, M):
        table.add_row(Text(label), *(format_number(x, precision) for x in row))
    return table


def format_number(x: float, precision: int = 3) -> str:
    if np.isneginf(x):
        return "−∞"
    if not np.isfinite(x):
        return str(x)
    s = f"{x:.{precision}f}"
    return "0" if float(s) == 0 and precision > 0 and x == 0 else s


def values_tables(result: Result, precision: int = 3) -> list[Table]:
    """The numbers of every matrix, with token labels on token axes."""
    toks = token_labels(result.tokens.tokens)
    dim = lambda k: [str(i + 1) for i in range(k)]  # noqa: E731
    out = []
    if result.P is not None:
        out.append(matrix_table("E: token embeddings (r×n)", result.E, dim(result.E.shape[0]), toks, precision))
        out.append(matrix_table("P: positional encodings (r×n)", result.P, dim(result.P.shape[0]), toks, precision))
    out.append(matrix_table("I = [a^1 … a^n] (r×n)", result.I, dim(result.I.shape[0]), toks, precision))
    H = len(result.heads)
    for h, head in enumerate(result.heads):
        sfx = f"_{h + 1}" if H > 1 else ""
        out.append(matrix_table(f"Q{sfx} = W^q{sfx} I (q×n)", head.Q, dim(head.Q.shape[0]), toks, precision))
        out.append(matrix_table(f"K{sfx} = W^k{sfx} I (q×n)", head.K, dim(head.K.shape[0]), toks, precision))
        out.append(matrix_table(f"V{sfx} = W^v{sfx} I (v×n)", head.V, dim(head.V.shape[0]), toks, precision))
        out.append(
            matrix_table(
                f"A{sfx} = K{sfx}ᵀ Q{sfx} (n×n): rows keys i, columns queries j",
                head.A,
                toks,
                toks,
                precision,
                "i \\ j",
            )
        )
        out.append(
            matrix_table(f"A'{sfx} (n×n): column j is query j's weights", head.A_prime, toks, toks, precision, "i \\ j")
        )
        out.append(matrix_table(f"O{sfx} = V{sfx} A'{sfx} (v×n)", head.O, dim(head.O.shape[0]), toks, precision))
    if H > 1:
        out.append(matrix_table("O = W^o [O_1; …; O_H] (r×n)", result.O, dim(result.O.shape[0]), toks, precision))
    return out


def print_run(
    console: Console, result: Result, values: bool = False, precision: int = 3, heading: Optional[str] = None
) -> None:
    if heading:
        console.print(Text(heading, style="bold"))
    toks = token_labels(result.tokens.tokens)
    console.print(Text(f"tokens ({result.n}): ", style="bold") + Text(" · ".join(toks)))
    console.print(trace_table(result))
    console.print(summary_line(result))
    if values:
        console.print(Group(*values_tables(result, precision)))
