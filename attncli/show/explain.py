"""`attncli explain` at a terminal: the notes' three steps with real numbers, then the
matrix perspective and the check that both agree. Fits a 100-column terminal."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from attncli.core.explain import Explanation, Formulas, formulas
from attncli.core.trace import shape_text
from attncli.labels import token_labels
from attncli.show.blocks import Blocks, Column, fit, table_width
from attncli.show.tables import format_number


def vector_table(
    title: str,
    names: Sequence[str],
    labels: Sequence[str],
    vectors: Sequence[np.ndarray],
    precision: int,
    highlight: int | None = None,
    *,
    width: int = 100,
) -> Group:
    """Vectors as rows: one row per token, one column per component, every component
    shown (in blocks of columns when they do not fit ``width``)."""
    dim = len(vectors[0])
    several = len(vectors) > 1
    fixed = [
        Column("i", [str(k + 1) if several else "" for k in range(len(vectors))]),
        Column("token", [Text(label) for label in labels], justify="left"),
        Column("", [Text(name) for name in names], justify="left"),
    ]
    columns = [Column(str(c + 1), [format_number(v[c], precision) for v in vectors]) for c in range(dim)]
    styles = ["bold yellow" if k == highlight else None for k in range(len(vectors))]
    return Group(*fit(Blocks(title, fixed, columns, styles), width))


def bar(x: float, width: int = 30) -> str:
    if not np.isfinite(x) or x <= 0:
        return ""
    full = min(x, 1.0) * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


SUM_TERMS = 16  # terms of b^j written out; a longer sum names its largest and counts the rest


def weighted_sum(e: Explanation, precision: int) -> str:
    """``0.138·v^1 + 0.223·v^2 + …`` with every term, or the largest ones and how many
    smaller ones follow (never a bare ellipsis standing for numbers)."""
    n = e.result.n
    top = np.argsort(-e.alpha_prime, kind="stable")[: SUM_TERMS if n > SUM_TERMS else n]
    terms = " + ".join(f"{e.alpha_prime[i]:.{precision}f}·v^{i + 1}" for i in sorted(top))
    rest = n - len(top)
    return terms + (f" + {rest} smaller terms" if rest else "")


def scores_table(e: Explanation, labels: Sequence[str], precision: int, width: int) -> Table:
    """Step 2 as a table: α_{j,i}, α'_{j,i} and a bar per key, the bars as long as
    ``width`` leaves room for (numbers are never shortened)."""
    j, n = e.query, e.result.n
    alpha = [format_number(e.alpha[i], precision) for i in range(n)]
    alpha_p = [format_number(e.alpha_prime[i], precision) for i in range(n)]
    total = format_number(float(e.alpha_prime.sum()), precision)
    widths = [
        len(str(n)),
        max(cell_len(t) for t in [*labels, "token"]),
        max(len(x) for x in [*alpha, f"α_{j},i"]),
        max(len(x) for x in [*alpha_p, total, f"α'_{j},i"]),
    ]
    bar_width = max(4, min(30, width - table_width([*widths, 0]) - 1))
    table = Table(header_style="bold", pad_edge=False)
    heads = (("i", "right"), ("token", "left"), (f"α_{j},i", "right"), (f"α'_{j},i", "right"), ("", "left"))
    for (col, just), w in zip(heads, [*widths, bar_width]):
        table.add_column(col, justify=just, no_wrap=True, min_width=w)  # type: ignore[arg-type]
    for i in range(n):
        table.add_row(
            str(i + 1),
            Text(labels[i]),
            alpha[i],
            alpha_p[i],
            Text(bar(e.alpha_prime[i], bar_width), style="cyan"),
            style="bold yellow" if i == j - 1 else None,
        )
    table.add_row("", Text("sum", style="dim"), "", total, "")
    return table


def print_explanation(console: Console, e: Explanation, precision: int = 3) -> None:
    """The notes' three steps for one query, then the matrix perspective and the check."""
    labels = token_labels(e.result.tokens.tokens)
    f = formulas(e.result)
    _header(console, e, labels, f)
    console.rule(Text("Vector perspective", style="bold"))
    _step1(console, e, labels, f, precision)
    _step2(console, e, labels, f, precision)
    _step3(console, e, labels, precision)
    console.rule(Text("Matrix perspective (all queries at once)", style="bold"))
    _matrices(console, e, f)


def _header(console: Console, e: Explanation, labels: list[str], f: Formulas) -> None:
    r, d, j = e.result, e.result.dims, e.query
    head_txt = f", head {e.head} of {d.heads}" if d.heads > 1 else ""
    where = f" ({f.where})" if f.where else ""
    console.print(Text(f"Self-attention for query j = {j} ({labels[j - 1]!r}){head_txt}{where}", style="bold"))
    console.print(Text("tokens: ") + Text("  ".join(f"{i + 1}:{t}" for i, t in enumerate(labels))))
    console.print(
        Text(
            f"sizes: r = {d.r}, q = {d.q}, v = {d.v}, n = {d.n}"
            + ("; I = E + P (sinusoidal positions)" if r.P is not None else "")
        )
    )
    if r.is_model:
        console.print(Text(f"a^i: token i's vector entering {f.where}", style="dim"))
    else:
        _positions_note(console, e, labels)


def _step1(console: Console, e: Explanation, labels: list[str], f: Formulas, precision: int) -> None:
    d, j, n, w = e.result.dims, e.query, e.result.n, console.width
    console.print(
        Text(
            f"Step 1: every token a^i gives a key k^i = {f.proj('k', 'a^i')} and a value v^i = "
            f"{f.proj('v', 'a^i')}; the query is q^{j} = {f.proj('q', f'a^{j}')}.",
            style="bold",
        )
    )
    q_title = f"q^{j} = {f.proj('q', f'a^{j}')}  ({d.q} numbers)"
    console.print(vector_table(q_title, [f"q^{j}"], [labels[j - 1]], [e.q_j], precision, width=w))
    for m, vecs, size in (("k", e.k, d.q), ("v", e.v, d.v)):
        title = f"{m}^i = {f.proj(m, 'a^i')}  ({size} numbers each)"
        names = [f"{m}^{i + 1}" for i in range(n)]
        console.print(vector_table(title, names, labels, vecs, precision, j - 1, width=w))


def _step2(console: Console, e: Explanation, labels: list[str], f: Formulas, precision: int) -> None:
    j = e.query
    console.print(
        Text(
            f"Step 2: scores α_{{{j},i}} = q^{j} · k^i{f.scale}, then α'_{{{j},·}} = "
            f"{f.norm}(α_{{{j},·}}{f.temperature})" + ("; keys after the query are masked" if f.causal else ""),
            style="bold",
        )
    )
    console.print(scores_table(e, labels, precision, console.width))


def _step3(console: Console, e: Explanation, labels: list[str], precision: int) -> None:
    j, d = e.query, e.result.dims
    console.print(Text(f"Step 3: b^{j} = Σ_i α'_{{{j},i}} v^i", style="bold"))
    console.print(Text(f"  b^{j} = {weighted_sum(e, precision)}", style="dim"))
    title = f"b^{j}  ({d.v} numbers)"
    console.print(vector_table(title, [f"b^{j}"], [labels[j - 1]], [e.b_j], precision, width=console.width))


def _matrices(console: Console, e: Explanation, f: Formulas) -> None:
    r, b, j = e.result, e.index, e.query
    assert r.Q is not None and r.K is not None and r.V is not None and r.O_heads is not None
    shapes = Table(header_style="bold", pad_edge=False)
    for col in ("matrix", "=", "shape", "size"):
        shapes.add_column(col, no_wrap=col in ("matrix", "shape", "size"))
    for name, formula, sym, arr in (
        ("I", "[a^1 … a^n]", "r×n", r.layer_input if r.layer_input is not None else r.I),
        ("Q", f.proj("q", "I"), "q×n", r.Q[b]),
        ("K", f.proj("k", "I"), "q×n", r.K[b]),
        ("V", f.proj("v", "I"), "v×n", r.V[b]),
        ("A", f"Kᵀ Q{f.scale}", "n×n", r.scores[0, b]),
        ("A'", f"{f.norm}(A), by column", "n×n", r.A_prime[0, b]),
        ("O", "V A'", "v×n", r.O_heads[b]),
    ):
        shapes.add_row(name, Text(formula), sym, shape_text(arr.shape))
    console.print(shapes)
    ok = e.agrees
    mark = Text("✓ " if ok else "✗ ", style="bold green" if ok else "bold red")
    console.print(
        mark
        + Text(
            f"column {j} of A is α_{{{j},·}}, column {j} of A' is α'_{{{j},·}} and column {j} "
            f"of O equals b^{j}: largest difference {e.max_difference:.1e}"
        )
    )


def _positions_note(console: Console, e: Explanation, labels: list[str]) -> None:
    """Why positions matter: the same token at two positions."""
    toks = e.result.tokens.tokens
    seen: dict[str, int] = {}
    pair = None
    for i, t in enumerate(toks):
        if t in seen:
            pair = (seen[t], i)
            break
        seen[t] = i
    r = e.result
    if pair is None:
        if r.P is not None:
            console.print(
                Text("positions: I = E + P, so a token's vector a^i depends on where it stands.", style="dim")
            )
        return
    a, b = pair
    gap = float(np.abs(r.I[:, a] - r.I[:, b]).max())
    if r.P is None:
        console.print(
            Text(
                f"note: {toks[a]!r} stands at {a + 1} and {b + 1} with the same vector "
                f"(a^{a + 1} = a^{b + 1}), so it gets the same key, value and score: without "
                "positions attention cannot tell the two apart (try --positions sinusoidal).",
                style="dim",
            )
        )
    else:
        console.print(
            Text(
                f"positions: {toks[a]!r} stands at {a + 1} and {b + 1}; its embedding is the same but "
                f"P differs, so a^{a + 1} ≠ a^{b + 1} (largest difference {gap:.3f}).",
                style="dim",
            )
        )
