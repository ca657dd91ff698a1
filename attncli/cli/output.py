"""How results reach the terminal: stdout for results (tables, JSON lines, paths), stderr
for progress, spinners and warnings. Rich is imported only when something is drawn."""

from __future__ import annotations

import errno
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

from attncli.errors import AttnError
from attncli.labels import UNSAFE, json_safe, safe

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.segment import Segment


class ReaderGone(BaseException):
    """stdout's reader went away (``| head``). Not an OSError, so that Click's own
    broken-pipe handling (exit 1) lets it through to :func:`main`, which ends quietly."""


def write_failed(exc: OSError, where: str = "stdout") -> AttnError:
    """The one line for a write that failed (full disk, closed stream): exit 1, never 0."""
    if isinstance(exc, BrokenPipeError) and where == "stdout":
        raise ReaderGone() from None
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.EBADF:
        reason = "it is closed"
    return AttnError(f"cannot write to {where}: {reason}", code=1)


def _keep_newlines(m: re.Match[str]) -> str:
    return m.group() if m.group() == "\n" else safe(m.group())


class LazyConsole:
    """Rich's console for stdout, imported on first use: --json and --quiet never pay for it.

    Markup is off (text from input is never read as ``[bold]``), and every piece of text
    it writes has its control characters shown escaped (:func:`attncli.labels.safe`), so a
    token or a file name cannot reach the terminal as an escape sequence, whoever built the
    table. A write that fails (full disk) is an error, not a silent loss."""

    def __init__(self) -> None:
        self._console: Optional[Console] = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console
            from rich.segment import Segment

            class StdoutConsole(Console):
                def on_broken_pipe(self) -> None:  # Rich's own answer is exit 1
                    raise ReaderGone()

                def _render_buffer(self, buffer: Iterable[Segment]) -> str:
                    clean = (
                        Segment(UNSAFE.sub(_keep_newlines, text), style, None) if control is None else segment
                        for segment in buffer
                        for text, style, control in (segment,)
                    )
                    return super()._render_buffer(clean)

                def _check_buffer(self) -> None:
                    try:
                        super()._check_buffer()
                    except OSError as exc:
                        raise write_failed(exc) from None

            self._console = StdoutConsole(
                highlight=False, soft_wrap=False, markup=False, emoji=False, width=file_width()
            )
        return getattr(self._console, name)


PIPE_WIDTH = 200  # a file or a pipe has no width: wide tables are split at this many columns


def file_width() -> Optional[int]:
    """The console width for stdout: the terminal's own (None: Rich asks it), $COLUMNS
    when set, and for a file or pipe otherwise a generous width (Rich's 80 would split
    tables that a file has room for)."""
    import os

    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").strip().isdigit():
        return None
    return PIPE_WIDTH


def out_console() -> Any:
    return LazyConsole()


class FileProgress:
    """A progress bar on stderr for reading a large vectors file, shown only when stderr
    is a terminal and the file is over a few MB."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Optional[Progress] = None
        self.task: TaskID

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


def say(kind: str, message: str) -> None:
    """One line on stderr, ``kind: message``, made safe (a newline or an escape sequence in
    the message is shown escaped, so it can neither forge a second line nor drive the
    terminal). A stderr that cannot be written to is let be: there is no one to tell."""
    try:
        sys.stderr.write(f"{kind}: {safe(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def warn(message: str) -> None:
    say("warning", message)


def _out_piece(piece: str) -> None:
    """A piece of a JSON line on stdout: unsafe characters in its strings escaped
    (:func:`attncli.labels.json_safe`), the write checked."""
    try:
        sys.stdout.write(json_safe(piece))
    except OSError as exc:
        raise write_failed(exc) from None


def emit_line(text: str) -> None:
    """One line on stdout, made safe and flushed so a downstream ``head`` or ``jq`` sees it
    now. JSON from :func:`attncli.export.dumps` has no control characters, so it is
    unchanged; a failed write (full disk, closed stdout) is exit 1 with one line."""
    try:
        sys.stdout.write(safe(text) + "\n")
        sys.stdout.flush()
    except OSError as exc:
        raise write_failed(exc) from None


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
    from attncli.files import same_file

    if npz is not None:
        path = npz_path(npz, sentence.index)
        clash = next((f for f in files if same_file(f, path)), None)
        if clash is not None:
            raise AttnError(f"--npz {str(path)!r} is {clash}, a figure this run writes; give another name")
        save_npz(path, arrays())
        files.append(str(path))
    if json:
        obj = make_json(files)
        if sentence.index is not None:
            obj["line"] = sentence.line
        write_json(obj, _out_piece)  # matrices row by row, never the whole text
        emit_line("")
    elif quiet:
        for f in files:
            emit_line(f)
    else:
        from rich.text import Text

        show()
        for f in files:
            console.print(Text(f"wrote {f}"))
