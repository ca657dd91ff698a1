"""Writing files whole or not at all, and naming them from indices only.

A regular file (or a path that does not exist yet) is written to a temporary file beside
it and renamed into place only when complete; a link to one keeps its link (the file it
points to is replaced). Anything else that already exists is not ours to replace: a
character device (``/dev/null``, ``/dev/stdout``, a terminal) or a pipe that someone is
reading is written in place; a folder, a socket, a disk device or a pipe with no reader
is refused with one line."""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Optional

from attncli import stop
from attncli.errors import AttnError


def ensure_dir(folder: str | Path) -> Path:
    """Create ``folder`` if missing; exit 1 with a clear message if that fails."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AttnError(f"cannot create folder {str(path)!r}: {exc.strerror or exc}", code=1) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AttnError(f"cannot write to folder {str(path)!r}: permission denied", code=1)
    _take_turns(path)
    return path


_HELD: dict[str, int] = {}  # output folders this process holds, by real path


def _take_turns(folder: Path) -> None:
    """Runs writing figures into one folder take turns: this process holds an exclusive
    lock on the folder itself (no lock file is left behind) from its first figure to its
    exit, and a second run waits for it, so a folder never holds a mix of two runs'
    figures. Where folders cannot be locked (some network file systems) runs go ahead."""
    key = os.path.realpath(folder)
    if key in _HELD or os.name != "posix":
        return
    import fcntl

    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        import sys

        from attncli.labels import safe

        sys.stderr.write(f"waiting: another attncli run is writing figures to {safe(key)}\n")
        sys.stderr.flush()
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return
    _HELD[key] = fd  # released when the process ends


def _cannot(path: Path, why: str, code: int = 1) -> AttnError:
    return AttnError(f"cannot write {str(path)!r}: {why}", code=code)


def _in_place(path: Path) -> Optional[int]:
    """An open descriptor when ``path`` exists and is not a regular file (nor a link to
    one) but can be written where it is; None when it is a regular file or missing."""
    special = str(path).startswith(("/dev/", "/proc/"))  # /dev/stdout, /proc/self/fd/1: write where they point
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _cannot(path, exc.strerror or str(exc)) from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise _cannot(path, "it is a folder", 2)
    if stat.S_ISREG(mode) and not special:
        return None
    if stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
        raise _cannot(path, "it is a socket or a disk device, not a file; attncli writes only files and pipes", 2)
    flags = os.O_WRONLY | (os.O_NONBLOCK if stat.S_ISFIFO(mode) else 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | (os.O_TRUNC if stat.S_ISREG(mode) else 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise _cannot(path, "it is a pipe (FIFO) that no one is reading", 2) from None
        raise _cannot(path, exc.strerror or str(exc)) from None
    if stat.S_ISFIFO(mode):
        os.set_blocking(fd, True)
    return fd


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it into place only on success.

    A device or a pipe is written in place (see the module's notes); every write is
    checked, so a full disk is an error (exit 1), never a short file."""
    path = Path(path)
    fd = _in_place(path)
    if fd is not None:
        try:
            with os.fdopen(fd, mode) as fh:
                yield fh
        except OSError as exc:
            raise _cannot(path, exc.strerror or str(exc)) from None
        return
    yield from _atomic(path, mode)


def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    import tempfile  # here: a run that writes nothing (--json --no-plot) never needs it

    target = Path(os.path.realpath(path)) if path.is_symlink() else path  # keep the link, replace its file
    with stop.deferred():  # a signal now is handled once the temporary file is on the list
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".part")
        except OSError as exc:
            raise _cannot(path, exc.strerror or str(exc)) from None
        stop.temp_files.add(tmp)  # removed by the signal handler if we are stopped
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _cannot(path, exc.strerror or str(exc)) from None
        raise
    finally:
        stop.temp_files.discard(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (existing or not)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def figure_name(stem: str, ext: str, sentence: int | None = None) -> str:
    """``head_1.png``, ``heads.png``, and for batch line k ``s{k}_head_1.png``."""
    prefix = f"s{sentence}_" if sentence is not None else ""
    return f"{prefix}{stem}.{ext}"
