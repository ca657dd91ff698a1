"""Writing files whole or not at all, and naming them from indices only."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

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
    return path


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it into place only on success."""
    import tempfile  # here: a run that writes nothing (--json --no-plot) never needs it

    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise AttnError(f"cannot write {str(path)!r}: {exc.strerror or exc}", code=1) from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise AttnError(f"cannot write {str(path)!r}: {exc.strerror or exc}", code=1) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def figure_name(stem: str, ext: str, sentence: int | None = None) -> str:
    """``head_1.png``, ``heads.png``, and for batch line k ``s{k}_head_1.png``."""
    prefix = f"s{sentence}_" if sentence is not None else ""
    return f"{prefix}{stem}.{ext}"
