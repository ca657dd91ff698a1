"""Running one piece of work per sentence: per-line errors, --fail-fast, a progress bar."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from attncli.cli.inputs import Sentence
from attncli.cli.output import say
from attncli.errors import AttnError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def where(sentence: Sentence) -> str:
    if sentence.index is None:
        return ""
    return f"line {sentence.line} (sentence {sentence.index}): "


def _single(sentences: Iterable[Sentence]) -> bool:
    single = getattr(sentences, "single", None)
    return single if single is not None else len(sentences) == 1  # type: ignore[arg-type]


def _bar(sentences: Iterable[Sentence], progress: bool, quiet: bool) -> tuple[Optional[Progress], Optional[TaskID]]:
    """A bar on a terminal stderr, unless stdout goes to the same screen (it would cut
    through); its total is known only for a list (stdin is a stream)."""
    if not (progress and not quiet and sys.stderr.isatty() and not sys.stdout.isatty()):
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    # redirect_stdout=False: JSON lines must go to stdout, never into the bar on stderr
    bar = Progress(console=Console(stderr=True), transient=True, redirect_stdout=False)
    bar.start()
    total = len(sentences) if isinstance(sentences, list) else None
    return bar, bar.add_task("sentences", total=total)


def _one(sentence: Sentence, work: Callable[[Sentence], None]) -> None:
    if sentence.error is not None:
        raise AttnError(sentence.error)
    work(sentence)


def run_batch(
    sentences: Iterable[Sentence],
    work: Callable[[Sentence], None],
    *,
    fail_fast: bool = False,
    progress: bool = True,
    quiet: bool = False,
) -> int:
    """Call ``work`` for each sentence. A bad line (exit-2 error: bad text, bytes not in
    the encoding, text the figure code refuses) in a batch is reported with its line
    number and the others still run; the result is 2 if any failed. Failures while
    working (exit 1) stop at once. Returns the exit code."""
    if _single(sentences):
        for sentence in sentences:
            _one(sentence, work)
        return 0
    from attncli.cli.process import batch_started

    batch_started()
    failed = False
    bar, task = _bar(sentences, progress, quiet)
    try:
        for sentence in sentences:
            try:
                _one(sentence, work)
            except AttnError as exc:
                if exc.code != 2:
                    raise AttnError(f"{where(sentence)}{exc.message}", exc.code) from None
                failed = True
                say("error", f"{where(sentence)}{exc.message}")
                if fail_fast:
                    return 2
            if bar is not None and task is not None:  # both or neither
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return 2 if failed else 0
