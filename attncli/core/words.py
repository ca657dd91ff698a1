"""Words for messages and titles."""

from __future__ import annotations


def count(n: int, word: str) -> str:
    """``1 layer``, ``2 layers``."""
    return f"{n} {word}{'' if n == 1 else 's'}"
