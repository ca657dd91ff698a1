"""Token labels for figures and tables: short, and duplicates told apart; and text from
input made safe to print (no control character ever reaches a terminal)."""

from __future__ import annotations

import re

SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# C0, DEL, C1, the bidirectional overrides and isolates (they reorder what a reader sees),
# line/paragraph separators, and lone surrogates (bytes of a non-UTF-8 argument)
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, markup: bool = False) -> str:
    """``text`` with every control character shown escaped (ESC as ``\\x1b``, a newline as
    ``\\n``, U+202E as ``\\u202e``), so input can never move the cursor, retitle the
    terminal or forge a second line. ``markup=True`` also escapes Rich markup (``[bold]``),
    for strings that Rich parses."""
    out = UNSAFE.sub(_escape, str(text))
    if markup:
        from rich.markup import escape

        out = escape(out)
    return out


def json_safe(text: str) -> str:
    """JSON text with the unsafe characters left in its strings (C1 controls, bidi
    overrides, lone surrogates; json already escapes C0) written as ``\\uXXXX``: the same
    JSON data, nothing a terminal acts on. ASCII JSON text can hold only DEL of them (json
    escapes C0), so the matrices' digits skip the scan."""
    if text.isascii() and "\x7f" not in text:
        return text
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if UNSAFE.search(text) else text


def token_labels(tokens: list[str], width: int = 14) -> list[str]:
    """Tokens as labels: control characters made visible, long ones shortened with
    "…", and a repeated token numbered from its second occurrence on (``the``,
    ``the₂``), only where a label would otherwise repeat."""
    shown = []
    for t in tokens:
        t = safe(t.replace("\n", "⏎").replace("\t", "⇥"))
        t = t if t.strip() else repr(t)
        shown.append(t if len(t) <= width else t[: width - 1] + "…")
    seen: dict[str, int] = {}
    out = []
    for t in shown:
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t}{str(seen[t]).translate(SUBSCRIPTS)}")
    return out
