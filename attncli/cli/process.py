"""Process tricks for a short-lived command, in one place, each measured in bench/
(bench/README.md, "Model"): together ~15% of a model run's wall time.

- Typer builds the options of every command before parsing: :func:`only` gives it the
  one command run (~9 ms).
- Start-up creates ~30k objects that live to the end, so the cycle collector stays off
  (~20 ms) until a batch begins (:func:`batch_started` turns it back on, after
  ``gc.freeze()``).
- Python's teardown at exit frees every module and object (40–60 ms): the last exit
  handler ends the process once every stream is flushed. Other exit handlers run first.
- numpy asks for transparent huge pages for large arrays (``NUMPY_MADVISE_HUGEPAGE``);
  on a VM the first touch of fresh huge pages is slow (``run -H 8 --npz`` at 4,096
  tokens: 2.1–3.1 s with ordinary pages, 2.8–5.4 s with huge pages, bench/README.md),
  so a command's process uses ordinary pages unless the variable is set.
- glibc returns freed arrays of a few MiB to the system and faults the next ones in
  afresh: a command that computes keeps them for reuse (:mod:`attncli.core.heap`; a
  512-token MiniLM forward pass 106 → 87 ms) unless the user tunes malloc themselves.
- OpenBLAS's idle threads spin for ~50 ms after every product (a whole core, measured),
  beside the forward pass's own numpy work, the JSON threads and the drawing pool's
  workers: ``OPENBLAS_THREAD_TIMEOUT=4`` lets them sleep at once (a 512-token MiniLM
  forward pass 106 → 85 ms; ``model --json`` at 256 tokens 0.12 s less CPU), unless set.

:data:`DEFAULTS` are read when numpy (and its OpenBLAS) load, inside ``main``.
"""

from __future__ import annotations

import atexit
import copy
import gc
import os
import sys
from typing import Callable

import typer

_finished: list[int] = []  # main()'s exit code, once it has one
DEFAULTS = {"NUMPY_MADVISE_HUGEPAGE": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}  # a user's own values are kept


def only(app: typer.Typer, name: str) -> typer.Typer:
    """The app with just the command named, if it names one (the group and its help are
    the same). Anything else (an option, a typo) gets the whole app and its messages."""
    if name in ("--help", "-h"):
        return listing(app)
    chosen = [c for c in app.registered_commands if (c.name or getattr(c.callback, "__name__", "")) == name]
    if not chosen:
        return app
    sub = copy.copy(app)
    sub.registered_commands = chosen
    return sub


def listing(app: typer.Typer) -> typer.Typer:
    """The app for ``attncli --help``: the same commands and one-line descriptions, but
    without building every command's options (the list never shows them)."""
    sub = copy.copy(app)
    sub.registered_commands = [copy.copy(c) for c in app.registered_commands]
    for c in sub.registered_commands:
        original = c.callback

        def stub() -> None:  # never run: --help ends before any command
            raise AssertionError("the command listing only shows help")

        stub.__doc__, stub.__name__ = getattr(original, "__doc__", None), getattr(original, "__name__", "command")
        c.name = c.name or stub.__name__
        c.callback = stub
    return sub


def batch_started() -> None:
    """A batch may run for long: collect cycles again, leaving what start-up made
    (modules, ~30k objects) out of every pass."""
    gc.freeze()
    gc.enable()


def _skip_teardown() -> None:
    if _finished:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(_finished[0])


def short_lived(main: Callable[[], None]) -> None:
    """Run ``main`` with the collector off, :data:`DEFAULTS` in the environment (ordinary
    pages for numpy's arrays, OpenBLAS threads that sleep when idle), freed memory kept
    for reuse by a command (not for help) and without Python's teardown at the end."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    if len(sys.argv) > 1 and sys.argv[1] not in ("--help", "-h", "--version"):
        from attncli.core.heap import keep_freed_memory

        keep_freed_memory(unless_set=True)
    gc.disable()
    atexit.register(_skip_teardown)  # registered first, so run last
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            _finished.append(exc.code)
        raise
