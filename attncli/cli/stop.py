"""Stopping cleanly on a signal: SIGINT, SIGTERM and SIGHUP become one exception in the
main thread, so every ``finally`` runs (temporary files removed, drawing workers ended),
and the command ends with one line and exit 128 + n (130 for Ctrl-C).

Kept apart and tiny: the console script installs these handlers before it imports
anything heavy, so a signal in the first tenth of a second is handled too."""

from __future__ import annotations

import signal
from typing import Optional

SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
NAMES = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hung up"}


class Interrupted(BaseException):
    """A signal asked us to stop. Not an Exception: no ``except Exception`` swallows it."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        name = signal.Signals(self.signum).name
        return "interrupted" if name == "SIGINT" else f"{NAMES.get(name, 'stopped')} ({name})"


_first: list[int] = []  # the signal that is stopping us, once one has come


def _handler(signum: int, frame) -> None:
    if _first:  # already stopping: let the clean-up finish undisturbed
        return
    _first.append(signum)
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP in this (main) thread."""
    for sig in SIGNALS:
        try:
            signal.signal(sig, _handler)
        except (ValueError, OSError):  # not the main thread, or not allowed
            pass


def stopping() -> Optional[int]:
    """The signal number we are stopping for, if any."""
    return _first[0] if _first else None


def exit_now(exc: Interrupted) -> None:
    """One line on stderr and the signal's exit code, when nothing else is set up yet."""
    import os
    import sys

    try:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os._exit(exc.code)
