"""Human output with Rich: the dimension trace, the numbers of every matrix, statistics.

Nothing here computes attention; it only lays out what an :class:`AttentionResult`
holds, for a run and a checkpoint alike.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from attncli.core.result import AttentionResult
from attncli.core.trace import shape_text, summary, trace
from attncli.core.words import count
from attncli.labels import token_labels


def trace_table(result: AttentionResult, title: Optional[str] = None) -> Table:
    """Every matrix with its symbol, formula, symbolic shape and numeric shape."""
    d = result.dims
    if title is None:
        title = f"dimension trace  (r={d.r}, q={d.q}, v={d.v}, n={d.n}, H={d.heads})"
        if result.is_model:
            kv = f", G={d.groups}" if d.groups != d.heads else ""
            title = f"dimension trace of every layer and head  (r={d.r}, q={d.q}, v={d.v}, n={d.n}, H={d.heads}{kv})"
    table = Table(title=Text(title), title_justify="left", header_style="bold")
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


def summary_line(result: AttentionResult) -> Text:
    symbolic, numeric = summary(result)
    text = Text()
    text.append("I → Q,K → A,A' → O:  ", style="bold")
    text.append(symbolic)
    text.append("  =  ")
    text.append(numeric, style="bold green")
    H = result.dims.heads
    if H > 1 and not result.is_model:
        text.append(f"   ({H} heads, merged by W^o)" if result.weights.get("Wo") is not None else f"   ({H} heads)")
    return text


def groups_line(result: AttentionResult) -> Optional[Text]:
    """Which query heads share a key/value head (grouped-query attention)."""
    d = result.dims
    if d.groups == d.heads:
        return None
    size = d.heads // d.groups
    parts = [f"K,V {g}: heads {(g - 1) * size + 1}–{g * size}" for g in range(1, d.groups + 1)]
    return Text(
        f"grouped-query attention: {d.heads} query heads share {d.groups} key/value heads  (" + "; ".join(parts) + ")"
    )


def model_header(result: AttentionResult) -> Text:
    assert result.checkpoint is not None
    d, ck = result.dims, result.checkpoint
    return Text(
        f"{ck.name} ({ck.model_type}): {count(d.layers, 'layer')} × {count(d.heads, 'head')}, "
        f"r = {d.r}, q = v = {d.q}, n = {d.n}",
        style="bold",
    )


def stats_table(result: AttentionResult, stats: list[dict[str, Any]]) -> Table:
    title = "head statistics (entropy in nats; shares are means over queries j)"
    if result.is_model:
        title = f"selected: layers {ranges(result.layers)}, heads {ranges(result.heads)}; " + title
    table = Table(title=Text(title), title_justify="left", header_style="bold")
    columns = ["layer"] if result.is_model else []
    columns += ["head", "entropy mean", "entropy min", "max weight", "→ self", "→ previous", "→ first"]
    for col in columns:
        table.add_column(col, justify="right")
    for s in stats:
        where = [str(s["layer"])] if result.is_model else []
        table.add_row(
            *where,
            str(s["head"]),
            f"{s['entropy_mean']:.3f}",
            f"{s['entropy_min']:.3f}",
            f"{s['max_weight']:.3f}",
            f"{s['self']:.1%}",
            f"{s['previous']:.1%}",
            f"{s['first']:.1%}",
        )
    return table


def ranges(ks: list[int]) -> str:
    if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 2:
        return f"{ks[0]}–{ks[-1]}"
    return ", ".join(map(str, ks))


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


def values_tables(result: AttentionResult, precision: int = 3) -> list[Table]:
    """The numbers of every matrix, with token labels on token axes."""
    toks = token_labels(result.tokens.tokens)

    def dim(k: int) -> list[str]:
        return [str(i + 1) for i in range(k)]

    out = []
    if result.P is not None and result.E is not None:
        out.append(matrix_table("E: token embeddings (r×n)", result.E, dim(result.E.shape[0]), toks, precision))
        out.append(matrix_table("P: positional encodings (r×n)", result.P, dim(result.P.shape[0]), toks, precision))
    out.append(matrix_table("I = [a^1 … a^n] (r×n)", result.I, dim(result.I.shape[0]), toks, precision))
    H = result.dims.heads
    for b, h in enumerate(result.heads):
        for a, l in enumerate(result.layers):
            sfx = f"_{h}" if H > 1 else ""
            where = f"layer {l}: " if result.is_model else ""
            for M, what in _head_matrices(result, b, sfx):
                out.append(matrix_table(f"{where}{what}", M, dim(M.shape[0]), toks, precision))
            out.append(
                matrix_table(
                    f"{where}A{sfx} = K{sfx}ᵀ Q{sfx} (n×n): rows keys i, columns queries j",
                    result.scores[a, b],
                    toks,
                    toks,
                    precision,
                    "i \\ j",
                )
            )
            out.append(
                matrix_table(
                    f"{where}A'{sfx} (n×n): column j is query j's weights",
                    result.A_prime[a, b],
                    toks,
                    toks,
                    precision,
                    "i \\ j",
                )
            )
            if result.O_heads is not None:
                M = result.O_heads[b]
                out.append(matrix_table(f"O{sfx} = V{sfx} A'{sfx} (v×n)", M, dim(M.shape[0]), toks, precision))
    if H > 1 and result.O_concat is not None:
        out.append(matrix_table("O = W^o [O_1; …; O_H] (r×n)", result.O, dim(result.O.shape[0]), toks, precision))
    return out


def _head_matrices(result: AttentionResult, b: int, sfx: str) -> list[tuple[np.ndarray, str]]:
    """Q, K, V of head b where the result has them (a run)."""
    out = []
    for name, weight, shape in (("Q", "q", "q×n"), ("K", "k", "q×n"), ("V", "v", "v×n")):
        stack = getattr(result, name)
        if stack is not None:
            out.append((stack[b], f"{name}{sfx} = W^{weight}{sfx} I ({shape})"))
    return out


def print_result(
    console: Console,
    result: AttentionResult,
    *,
    values: bool = False,
    precision: int = 3,
    heading: Optional[str] = None,
    stats: Optional[list[dict[str, Any]]] = None,
) -> None:
    """The header, tokens, trace, summary line, the numbers (``values``) and statistics."""
    if heading:
        console.print(Text(heading, style="bold"))
    if result.is_model:
        console.print(model_header(result))
    toks = token_labels(result.tokens.tokens)
    console.print(Text(f"tokens ({result.n}): ", style="bold") + Text(" · ".join(toks)))
    console.print(trace_table(result))
    console.print(summary_line(result))
    groups = groups_line(result)
    if groups is not None:
        console.print(groups)
    if values:
        console.print(Group(*values_tables(result, precision)))
    if stats is not None:
        console.print(stats_table(result, stats))
