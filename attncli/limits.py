"""How much memory there is, and refusing work that would need more, before allocating."""

from __future__ import annotations

import os

from attncli.errors import AttnError

NPZ_MEMBER_LIMIT = 2 << 30
"""The most one array of a user's ``.npz`` may expand to (2 GiB: 268 million float64
values, more than the largest single weight or vectors table attncli can draw or use).
A zip member is never read past the size it declares, so this bounds a zip bomb."""


def physical_memory() -> int:
    """Bytes of RAM, or of the address-space limit (``ulimit -v``) when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 1 << 62
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            total = min(total, soft)
    except (ImportError, OSError, ValueError):
        pass
    return total


def human(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} PB"


def check_memory(nbytes: int, what: str, hint: str) -> None:
    """Refuse (exit 2) work whose arrays alone would need more memory than there is."""
    have = physical_memory()
    if nbytes > have:
        raise AttnError(f"{what} would need about {human(nbytes)} of memory, more than the {human(have)} here; {hint}")
