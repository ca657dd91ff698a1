"""`attncli explain` at a terminal: the notes' three steps with real numbers, then the
matrix perspective and the check that both agree. Fits a 100-column terminal."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attncli.core.explain import Explanation
from attncli.core.trace import shape_text
from attncli.labels import token_labels
from attncli.show.tables import format_number

MAX_COMPONENTS = 8  # vector components shown before eliding the middle


def _components(dim: int) -> list[int]:
    if dim <= MAX_COMPONENTS:
        return list(range(dim))
    return list(range(MAX_COMPONENTS - 2)) + [-1] + [dim - 2, dim - 1]


def vector_table(
    title: str,
    names: Sequence[str],
    labels: Sequence[str],
    vectors: Sequence[np.ndarray],
    precision: int,
    highlight: int | None = None,
) -> Table:
    """Vectors as rows: one row per token, one column per component (middle elided)."""
    dim = len(vectors[0])
    table = Table(title=Text(title), title_justify="left", header_style="bold", pad_edge=False)
    table.add_column("i", justify="right")
    table.add_column("token")
    table.add_column("")
    comps = _components(dim)
    for c in comps:
        table.add_column("…" if c < 0 else str(c + 1), justify="right")
    for k, (name, label, vec) in enumerate(zip(names, labels, vectors)):
        cells = ["…" if c < 0 else format_number(vec[c], precision) for c in comps]
        style = "bold yellow" if k == highlight else None
        table.add_row(str(k + 1) if len(vectors) > 1 else "", Text(label), Text(name), *cells, style=style)
    return table


def bar(x: float, width: int = 30) -> str:
    if not np.isfinite(x) or x <= 0:
        return ""
    full = min(x, 1.0) * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def print_explanation(console: Console, e: Explanation, precision: int = 3) -> None:
    r = e.result
    s = r.settings
    assert s is not None
    labels = token_labels(r.tokens.tokens)
    j = e.query
    H = r.dims.heads
    d = r.dims
    head_txt = f", head {e.head} of {H}" if H > 1 else ""
    console.print(Text(f"Self-attention for query j = {j} ({labels[j - 1]!r}){head_txt}", style="bold"))
    console.print(Text("tokens: ") + Text("  ".join(f"{i + 1}:{t}" for i, t in enumerate(labels))))
    console.print(
        Text(
            f"sizes: r = {d.r}, q = {d.q}, v = {d.v}, n = {d.n}"
            + ("; I = E + P (sinusoidal positions)" if r.P is not None else "")
        )
    )
    _positions_note(console, e, labels)

    console.rule(Text("Vector perspective", style="bold"))
    console.print(
        Text(
            "Step 1: every token a^i gives a key k^i = W^k a^i and a value v^i = W^v a^i; "
            f"the query is q^{j} = W^q a^{j}.",
            style="bold",
        )
    )
    console.print(
        vector_table(f"q^{j} = W^q a^{j}  ({d.q} numbers)", [f"q^{j}"], [labels[j - 1]], [e.q_j], precision)
    )
    console.print(
        vector_table(
            f"k^i = W^k a^i  ({d.q} numbers each)", [f"k^{i + 1}" for i in range(r.n)], labels, e.k, precision, j - 1
        )
    )
    console.print(
        vector_table(
            f"v^i = W^v a^i  ({d.v} numbers each)", [f"v^{i + 1}" for i in range(r.n)], labels, e.v, precision, j - 1
        )
    )

    scaled = " / √q" if s.scale else ""
    temp = f" / T (T = {s.temperature:g})" if s.temperature != 1.0 else ""
    console.print(
        Text(
            f"Step 2: scores α_{{{j},i}} = q^{j} · k^i{scaled}, then α'_{{{j},·}} = "
            f"{s.norm}(α_{{{j},·}}{temp})" + ("; keys after the query are masked" if s.causal else ""),
            style="bold",
        )
    )
    table = Table(header_style="bold", pad_edge=False)
    just: Literal["left", "right"]
    for col, just in (("i", "right"), ("token", "left"), (f"α_{j},i", "right"), (f"α'_{j},i", "right"), ("", "left")):
        table.add_column(col, justify=just)
    for i in range(r.n):
        table.add_row(
            str(i + 1),
            Text(labels[i]),
            format_number(e.alpha[i], precision),
            format_number(e.alpha_prime[i], precision),
            Text(bar(e.alpha_prime[i]), style="cyan"),
            style="bold yellow" if i == j - 1 else None,
        )
    total = float(e.alpha_prime.sum())
    table.add_row("", Text("sum", style="dim"), "", format_number(total, precision), "")
    console.print(table)

    console.print(Text(f"Step 3: b^{j} = Σ_i α'_{{{j},i}} v^i", style="bold"))
    top = np.argsort(-e.alpha_prime, kind="stable")[:4]
    terms = " + ".join(f"{e.alpha_prime[i]:.{precision}f}·v^{i + 1}" for i in sorted(top))
    more = " + …" if r.n > len(top) else ""
    console.print(Text(f"  b^{j} = {terms}{more}", style="dim"))
    console.print(vector_table(f"b^{j}  ({d.v} numbers)", [f"b^{j}"], [labels[j - 1]], [e.b_j], precision))

    console.rule(Text("Matrix perspective (all queries at once)", style="bold"))
    b = e.head - 1
    assert r.Q is not None and r.K is not None and r.V is not None and r.O_heads is not None
    shapes = Table(header_style="bold", pad_edge=False)
    for col in ("matrix", "=", "shape", "size"):
        shapes.add_column(col)
    for name, formula, sym, arr in (
        ("I", "[a^1 … a^n]", "r×n", r.I),
        ("Q", "W^q I", "q×n", r.Q[b]),
        ("K", "W^k I", "q×n", r.K[b]),
        ("V", "W^v I", "v×n", r.V[b]),
        ("A", f"Kᵀ Q{scaled}", "n×n", r.scores[0, b]),
        ("A'", f"{s.norm}(A), by column", "n×n", r.A_prime[0, b]),
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
