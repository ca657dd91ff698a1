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
from attncli.core.trace import collapse_heads, shape_text, summary, trace
from attncli.core.words import count
from attncli.labels import token_labels
from attncli.show.blocks import Blocks, Column, fit


def trace_table(result: AttentionResult, title: Optional[str] = None) -> Table:
    """Every matrix with its symbol, formula, symbolic shape and numeric shape. Heads
    with the same shapes (every head of a run) are shown once, as head h = 1…H."""
    d = result.dims
    steps, same = collapse_heads(trace(result))
    if title is None:
        title = f"dimension trace  (r={d.r}, q={d.q}, v={d.v}, n={d.n}, H={d.heads})"
        if result.is_model:
            kv = f", G={d.groups}" if d.groups != d.heads else ""
            title = f"dimension trace of every layer and head  (r={d.r}, q={d.q}, v={d.v}, n={d.n}, H={d.heads}{kv})"
        if same:
            title += f"; heads h = 1–{same} have the same shapes, shown once"
    # at least as wide as its title, so the title (with the sizes) never wraps
    table = Table(title=Text(title), title_justify="left", header_style="bold", min_width=len(title) + 2)
    table.add_column("head", justify="right", no_wrap=True)
    table.add_column("matrix", style="bold cyan", no_wrap=True)
    table.add_column("=", style="dim")
    table.add_column("shape", justify="center", no_wrap=True)
    table.add_column("size", justify="right", style="bold", no_wrap=True)
    last = None
    for step in steps:
        if step.head != last and last is not None:
            table.add_section()
        last = step.head
        if step.head is None:
            head, symbol = "", step.symbol
        elif same:
            head, symbol = f"1–{same}", f"{step.symbol}_h"
        else:
            head, symbol = str(step.head), f"{step.symbol}_{step.head}"
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


def stats_table(result: AttentionResult, stats: list[dict[str, Any]], width: int = 200) -> list[Table]:
    """Per-head statistics, in blocks of columns when the console is narrow."""
    title = "head statistics (entropy in nats; shares are means over queries j)"
    if result.is_model:
        title = f"selected: layers {ranges(result.layers)}, heads {ranges(result.heads)}; " + title
    fixed = [Column("layer", [str(s["layer"]) for s in stats])] if result.is_model else []
    fixed.append(Column("head", [str(s["head"]) for s in stats]))
    columns = [
        Column("entropy mean", [f"{s['entropy_mean']:.3f}" for s in stats]),
        Column("entropy min", [f"{s['entropy_min']:.3f}" for s in stats]),
        Column("max weight", [f"{s['max_weight']:.3f}" for s in stats]),
        Column("→ self", [f"{s['self']:.1%}" for s in stats]),
        Column("→ previous", [f"{s['previous']:.1%}" for s in stats]),
        Column("→ first", [f"{s['first']:.1%}" for s in stats]),
    ]
    return fit(Blocks(title, fixed, columns), width)


def ranges(ks: list[int]) -> str:
    if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 2:
        return f"{ks[0]}–{ks[-1]}"
    return ", ".join(map(str, ks))


def matrix_table(
    title: str,
    M: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    precision: int = 3,
    *,
    corner: str = "",
    width: int = 200,
) -> list[Table]:
    """A matrix with row and column labels, as one table or several blocks of columns
    that each fit ``width`` (no number is ever shortened)."""
    fixed = [Column(corner, [Text(label) for label in rows], style="bold")]
    columns = [Column(c, [format_number(x, precision) for x in M[:, k]]) for k, c in enumerate(cols)]
    return fit(Blocks(title, fixed, columns), width)


def format_number(x: float, precision: int = 3) -> str:
    if np.isneginf(x):
        return "−∞"
    if not np.isfinite(x):
        return str(x)
    s = f"{x:.{precision}f}"
    return "0" if float(s) == 0 and precision > 0 and x == 0 else s


def scores_label(result: AttentionResult, sfx: str) -> str:
    """What the A table holds: the scaled scores, with masked entries at −∞."""
    s = result.settings
    scaled = " / √q" if s is None or s.scale else ""
    label = f"A{sfx} = K{sfx}ᵀ Q{sfx}{scaled} (n×n): rows keys i, columns queries j"
    if result.causal:
        label += "; masked keys (i > j) are −∞"
    return label


def values_tables(result: AttentionResult, precision: int = 3, width: int = 200) -> list[Table]:
    """The numbers of every matrix, with token labels on token axes, in blocks of
    columns that fit ``width``."""
    toks = token_labels(result.tokens.tokens)
    out: list[Table] = []

    def add(
        title: str, M: np.ndarray, rows: Optional[Sequence[str]] = None, cols: Optional[Sequence[str]] = None
    ) -> None:
        r = rows if rows is not None else dim(M.shape[0])
        c = cols if cols is not None else toks
        out.extend(matrix_table(title, M, r, c, precision, corner="i \\ j" if rows is not None else "", width=width))

    if result.P is not None and result.E is not None:
        add("E: token embeddings (r×n)", result.E)
        add("P: positional encodings (r×n)", result.P)
    add("I = [a^1 … a^n] (r×n)", result.I)
    H = result.dims.heads
    for b, h in enumerate(result.heads):
        sfx = f"_{h}" if H > 1 else ""
        for M, what in _weight_matrices(result, b, sfx):
            out.extend(matrix_table(what, M, dim(M.shape[0]), dim(M.shape[1]), precision, width=width))
        for a, l in enumerate(result.layers):
            where = f"layer {l}: " if result.is_model else ""
            for M, what in _head_matrices(result, b, sfx):
                add(f"{where}{what}", M)
            add(f"{where}{scores_label(result, sfx)}", result.scores[a, b], toks, toks)
            add(f"{where}A'{sfx} (n×n): column j is query j's weights", result.A_prime[a, b], toks, toks)
            if result.O_heads is not None:
                add(f"O{sfx} = V{sfx} A'{sfx} (v×n)", result.O_heads[b])
    if H > 1 and result.O_concat is not None:
        Wo = result.weights.get("Wo")
        if Wo is not None:
            out.extend(matrix_table("W^o (r×H·v)", Wo, dim(Wo.shape[0]), dim(Wo.shape[1]), precision, width=width))
            add("O = W^o [O_1; …; O_H] (r×n)", result.O)
        else:
            add("O = [O_1; …; O_H] (H·v×n)", result.O)
    return out


def dim(k: int) -> list[str]:
    """Row labels of a non-token axis: 1 … k."""
    return [str(i + 1) for i in range(k)]


def _weight_matrices(result: AttentionResult, b: int, sfx: str) -> list[tuple[np.ndarray, str]]:
    """W^q, W^k, W^v of head b where the result has them (a run): rows are the head's
    components, columns the r components of a token's vector."""
    out = []
    for key, weight, shape in (("Wq", "q", "q×r"), ("Wk", "k", "q×r"), ("Wv", "v", "v×r")):
        stack = result.weights.get(key)
        if stack is not None:
            out.append((stack[b], f"W^{weight}{sfx} ({shape}): rows head components, columns components of a^i"))
    return out


def print_result(
    console: Console,
    result: AttentionResult,
    *,
    values: bool = False,
    precision: int = 3,
    heading: Optional[str] = None,
    stats: Optional[list[dict[str, Any]]] = None,
    trace_format: str = "text",
) -> None:
    """The header, tokens, trace, summary line, the numbers (``values``) and statistics."""
    if heading:
        console.print(Text(heading, style="bold"))
    if result.is_model:
        console.print(model_header(result))
    toks = token_labels(result.tokens.tokens)
    console.print(Text(f"tokens ({result.n}): ", style="bold") + Text(" · ".join(toks)))
    if trace_format == "text":
        console.print(trace_table(result))
    else:
        from attncli.show import trace_text

        pasted = trace_text.markdown(result) if trace_format == "markdown" else trace_text.latex(result)
        console.print(Text(pasted), soft_wrap=True)
    console.print(summary_line(result))
    groups = groups_line(result)
    if groups is not None:
        console.print(groups)
    if values:
        console.print(Group(*values_tables(result, precision, console.width)))
    if stats is not None:
        console.print(Group(*stats_table(result, stats, console.width)))


def _head_matrices(result: AttentionResult, b: int, sfx: str) -> list[tuple[np.ndarray, str]]:
    """Q, K, V of head b where the result has them (a run)."""
    out = []
    for name, weight, shape in (("Q", "q", "q×n"), ("K", "k", "q×n"), ("V", "v", "v×n")):
        stack = getattr(result, name)
        if stack is not None:
            out.append((stack[b], f"{name}{sfx} = W^{weight}{sfx} I ({shape})"))
    return out
