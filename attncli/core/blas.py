"""The number of threads OpenBLAS (numpy's BLAS) uses, changed while a run lasts.

:func:`for_rows` is what the forward passes use: one thread for products of fewer than
:data:`SMALL` rows, and otherwise the cores that are not busy with other work. OpenBLAS's
threads wait for each other by spinning, so a thread on a core another process keeps busy
stalls every product: with one of two cores busy, MiniLM at 256 tokens took 0.86 s on two
threads against 0.11 s on one (and 2.2 s against 0.22 s at 512). One thread too few costs
at most the parallel speed-up; one too many cost 4-10× here.

OpenBLAS splits every matrix product over all cores. For the small products of a short
prompt (13 tokens × 576 → 1,536) that costs more than it gains: the threads wait for each
other, and on a busy machine each product became 3-5× slower. Python has no call for this
(numpy offers none); the library numpy loaded is found among the process's mapped files and
its own ``openblas_set_num_threads`` called through ctypes, as threadpoolctl does. Another
BLAS (MKL, Accelerate) or no /proc is left alone.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterator, Optional

SMALL = 128  # rows: fewer, and a product is too small to share between BLAS threads

_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads")
_CORE = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename")
Threads = tuple[Callable[[int], Any], Callable[[], int]]  # (set, get)
_found: list[Optional[tuple[Threads, Optional[Callable[[], bytes]]]]] = []


def _library() -> Optional[tuple[Threads, Optional[Callable[[], bytes]]]]:
    """((set, get) threads, corename) of the OpenBLAS this process has loaded, or None."""
    if _found:
        return _found[0]
    import ctypes

    import numpy  # noqa: F401  (loads its BLAS)

    found: Optional[tuple[Threads, Optional[Callable[[], bytes]]]] = None
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = {line.split(None, 5)[-1].strip() for line in fh if "openblas" in line.lower()}
        for path in sorted(p for p in paths if p.startswith("/")):
            lib = ctypes.CDLL(path)  # already mapped: the same handle, nothing loaded again
            set_ = next((getattr(lib, n) for n in _SET if hasattr(lib, n)), None)
            get = next((getattr(lib, n) for n in _GET if hasattr(lib, n)), None)
            core = next((getattr(lib, n) for n in _CORE if hasattr(lib, n)), None)
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype, get.restype = [ctypes.c_int], None, ctypes.c_int
                if core is not None:
                    core.restype = ctypes.c_char_p
                found = ((set_, get), core)
                break
    except OSError:
        found = None
    _found.append(found)
    return found


def _openblas() -> Optional[Threads]:
    """(set, get) of the OpenBLAS this process has loaded, or None."""
    lib = _library()
    return None if lib is None else lib[0]


def core() -> Optional[str]:
    """The kernels numpy's OpenBLAS runs ("Haswell", "SkylakeX", … as OpenBLAS names its
    core types), or None for another BLAS."""
    lib = _library()
    if lib is None or lib[1] is None:
        return None
    name = lib[1]()
    return name.decode("ascii", "replace") if name else None


@contextmanager
def at_most(n: int) -> Iterator[None]:
    """OpenBLAS uses at most ``n`` threads inside the block (then as many as before)."""
    lib = _openblas()
    before = lib[1]() if lib is not None else 0
    if lib is None or before <= n:
        yield
        return
    lib[0](n)
    try:
        yield
    finally:
        lib[0](before)


def idle_cores() -> int:
    """The cores this process may run on, less those other work keeps busy, at least 1.

    Busy means busy now and for a while: the tasks runnable at this moment other than this
    one (``/proc/loadavg``'s fourth field), but no more than the 1-minute load average
    (rounded). A process that merely woke up does not count, and neither does the load this
    process made itself (a long run, a benchmark loop)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    load = _load()
    if load is None:
        return cores
    average, running = load
    busy = min(int(average + 0.5), running - 1)
    return max(1, min(cores, cores - busy))


def _load() -> Optional[tuple[float, int]]:
    """(1-minute load average, tasks runnable now) from /proc/loadavg, or None."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            fields = fh.read().split()
        return float(fields[0]), int(fields[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def for_rows(m: int) -> AbstractContextManager[None]:
    """The BLAS threads for products of ``m`` rows (tokens): one below :data:`SMALL`,
    otherwise :func:`idle_cores`."""
    return at_most(1 if m < SMALL else idle_cores())
