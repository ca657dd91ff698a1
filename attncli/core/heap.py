"""glibc's malloc told to keep freed memory for reuse.

A forward pass, a survey batch and the JSON writer allocate and free arrays of a few MiB
again and again (a 512-token MiniLM pass: ~200 arrays of 0.8–3 MiB). By default glibc
hands arrays above its (adaptive) mmap threshold straight back to the system and trims the
heap's free top beyond 128 KiB, so the next array of the same size is faulted in afresh;
page faults are slow on virtual machines (bench/README.md: a 512-token pass 106 → 87 ms, a
block of JSON numbers 175 → 71 ns a number). Here arrays up to 32 MiB come from the heap
and up to 256 MiB of free heap is kept: memory stays bounded by the largest working set,
larger arrays (long inputs' n×n maps) are still mapped and unmapped on their own.
Nothing happens off glibc.
"""

from __future__ import annotations

import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory(*, unless_set: bool = False) -> bool:
    """Arrays up to 32 MiB from the heap, trimmed beyond 256 MiB free; True when set.
    ``unless_set``: leave glibc alone when the user's environment tunes it (a command's
    process respects that; survey workers do not: Dask's nanny sets
    MALLOC_TRIM_THRESHOLD_=65536, which made them 1.7× slower)."""
    if unless_set and any(k in os.environ for k in USER_SETTINGS):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr on this platform
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: glibc's mallopt
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):
        return False
