"""Which files a run wrote: ``DIR/attncli-manifest.json``, rewritten by every run that
writes figures, so an old figure beside new ones can be told apart; ``--clean`` removes
what the previous manifest lists, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from attncli import __version__
from attncli.errors import AttnError
from attncli.files import atomic_open

NAME = "attncli-manifest.json"


def _listed(folder: Path) -> list[str]:
    """The file names a previous attncli manifest in ``folder`` lists ([] without one)."""
    path = folder / NAME
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(data, dict) or "attncli" not in data or not isinstance(data.get("files"), list):
        return []
    return [f for f in data["files"] if isinstance(f, str) and f == Path(f).name and f not in ("", ".", "..")]


def clean(folder: Path) -> list[Path]:
    """Remove the files the previous run listed (plain files inside ``folder`` only);
    returns what was removed."""
    removed = []
    for name in _listed(folder):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            try:
                path.unlink()
            except OSError as exc:
                raise AttnError(f"--clean: cannot remove {str(path)!r}: {exc.strerror or exc}", code=1) from None
            removed.append(path)
    return removed


def write(folder: Path, command: str, files: Iterable[str]) -> Path:
    """List the files of this run that lie in ``folder`` (by name, in the order written)."""
    names: list[str] = []
    for f in files:
        p = Path(f)
        if p.parent.resolve() == folder.resolve() and p.name not in names and p.name != NAME:
            names.append(p.name)
    path = folder / NAME
    body = {"attncli": __version__, "command": command, "files": names}
    with atomic_open(path, "w") as fh:
        fh.write(json.dumps(body, indent=1, ensure_ascii=False) + "\n")
    return path
