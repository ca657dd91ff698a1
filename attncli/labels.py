"""Token labels for figures and tables: short, and duplicates told apart."""

from __future__ import annotations

SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def token_labels(tokens: list[str], width: int = 14) -> list[str]:
    """Tokens as labels: control characters made visible, long ones shortened with
    "…", and a repeated token numbered from its second occurrence on (``the``,
    ``the₂``), only where a label would otherwise repeat."""
    shown = []
    for t in tokens:
        t = t.replace("\n", "⏎").replace("\t", "⇥")
        t = t if t.strip() else repr(t)
        shown.append(t if len(t) <= width else t[: width - 1] + "…")
    seen: dict[str, int] = {}
    out = []
    for t in shown:
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t}{str(seen[t]).translate(SUBSCRIPTS)}")
    return out
