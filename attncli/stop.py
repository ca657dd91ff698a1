"""Stopping cleanly on a signal. SIGINT, SIGTERM and SIGHUP end the command at once, from
the handler itself: the drawing children are ended and waited for, every temporary file
still open is removed, one line goes to stderr and the exit code is 128 + n (130 for
Ctrl-C). Nothing relies on an exception unwinding through code that may swallow it (a
destructor, a weakref callback, a library's ``except BaseException``).

Kept apart and tiny: the console script installs the handlers before it imports anything
heavy, so a signal in the first tenth of a second is handled too."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType  # already loaded by signal (via enum): costs nothing at start-up

SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
NAMES = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hung up"}

temp_files: set[str] = set()  # temporary files being written (removed if we are stopped)
children: set[int] = set()  # drawing processes running (ended and waited for if we are stopped)
_first: list[int] = []  # the signal that is stopping us, once one has come


class Interrupted(BaseException):
    """A signal asked us to stop (raised only where no handler could exit for us)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return message(self.signum)


def message(signum: int) -> str:
    name = signal.Signals(signum).name
    return "interrupted" if name == "SIGINT" else f"{NAMES.get(name, 'stopped')} ({name})"


def clean_up() -> None:
    """End the children (SIGTERM, then SIGKILL after 2 s) and remove our temporary files."""
    for pid in list(children):
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2.0
    while children:
        for pid in list(children):
            if _ended(pid):
                children.discard(pid)
        if children and time.monotonic() > deadline:
            for pid in list(children):
                _kill(pid, signal.SIGKILL)
            deadline = float("inf")
        if children:
            time.sleep(0.005)
    for path in list(temp_files):
        try:
            os.unlink(path)
        except OSError:
            pass
        temp_files.discard(path)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        children.discard(pid)


def _ended(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def _handler(signum: int, frame: FrameType | None) -> None:
    if _first:  # already stopping
        return
    _first.append(signum)
    clean_up()
    try:
        os.write(2, f"error: {message(signum)}\n".encode())
    except OSError:
        pass
    os._exit(128 + signum)


def _child_handler(signum: int, frame: FrameType | None) -> None:
    """In a drawing child: remove the file it was writing and end, quietly."""
    if _first:
        return
    _first.append(signum)
    clean_up()
    os._exit(128 + signum)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP in this (main) thread."""
    for sig in SIGNALS:
        try:
            signal.signal(sig, _handler)
        except (ValueError, OSError):  # not the main thread, or not allowed
            pass


def in_child() -> None:
    """After fork, in the child: forget the parent's files and children; ignore Ctrl-C
    and SIGHUP (they reach the whole group; the parent ends us) and end on SIGTERM."""
    temp_files.clear()
    children.clear()
    _first.clear()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _child_handler)


class deferred:
    """Hold the stop signals back (they are delivered after) while a temporary file is
    created and recorded, or a child forked and recorded: no window leaves one behind."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def stopping() -> bool:
    return bool(_first)


def exit_now(exc: Interrupted) -> None:
    """One line on stderr and the signal's exit code."""
    try:
        os.write(2, f"error: {exc.message}\n".encode())
    except OSError:
        pass
    os._exit(exc.code)
