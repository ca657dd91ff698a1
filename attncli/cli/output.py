"""How results reach the terminal: stdout for results (tables, JSON lines, paths), stderr
for progress, spinners and warnings. Rich is imported only when something is drawn."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional


class ReaderGone(BaseException):
    """stdout's reader went away (``| head``). Not an OSError, so that Click's own
    broken-pipe handling (exit 1) lets it through to :func:`main`, which ends quietly."""


class LazyConsole:
    """Rich's console for stdout, imported on first use: --json and --quiet never pay for it."""

    def __init__(self) -> None:
        self._console = None

    def __getattr__(self, name: str):
        if self._console is None:
            from rich.console import Console

            class StdoutConsole(Console):
                def on_broken_pipe(self) -> None:  # Rich's own answer is exit 1
                    raise ReaderGone()

            self._console = StdoutConsole(highlight=False, soft_wrap=False)
        return getattr(self._console, name)


def out_console() -> Any:
    return LazyConsole()


class FileProgress:
    """A progress bar on stderr for reading a large vectors file, shown only when stderr
    is a terminal and the file is over a few MB."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < (4 << 20):
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "reading vectors",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("read", total=total)
        self.bar.update(self.task, completed=done)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def busy(message: str, enabled: bool) -> Iterator[None]:
    """A spinner on stderr for long drawing, only when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def emit_line(text: str) -> None:
    """One line on stdout, flushed so a downstream ``head`` or ``jq`` sees it now."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def deliver(
    sentence: Any,
    files: list[str],
    *,
    npz: Optional[Path],
    arrays: Callable[[], dict[str, Any]],
    make_json: Callable[[list[str]], dict[str, Any]],
    show: Callable[[], None],
    json: bool,
    quiet: bool,
    console: Any,
) -> None:
    """The common end of every sentence: the .npz, then one JSON line, the paths, or tables."""
    from attncli.export import npz_path, save_npz, write_json

    if npz is not None:
        path = npz_path(npz, sentence.index)
        save_npz(path, arrays())
        files.append(str(path))
    if json:
        obj = make_json(files)
        if sentence.index is not None:
            obj["line"] = sentence.line
        write_json(obj, sys.stdout.write)  # matrices row by row, never the whole text
        emit_line("")
    elif quiet:
        for f in files:
            emit_line(f)
    else:
        from rich.text import Text

        show()
        for f in files:
            console.print(Text(f"wrote {f}"))
