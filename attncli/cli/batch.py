"""Running one piece of work per sentence: per-line errors, --fail-fast, a progress bar."""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Optional

from attncli.cli.inputs import Sentence
from attncli.cli.output import say
from attncli.errors import AttnError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@dataclass(frozen=True)
class Later:
    """The rest of one sentence's work, run in input order once its figures are drawn;
    ``drop`` instead waits for them and removes them (a batch stopped by --fail-fast)."""

    finish: Callable[[], None]
    drop: Callable[[], None]

    def __call__(self) -> None:
        self.finish()


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


def _one(sentence: Sentence, work: Callable[[Sentence], Optional[Later]]) -> Optional[Later]:
    if sentence.error is not None:
        raise AttnError(sentence.error)
    return work(sentence)


def run_batch(
    sentences: Iterable[Sentence],
    work: Callable[[Sentence], Optional[Later]],
    *,
    fail_fast: bool = False,
    progress: bool = True,
    quiet: bool = False,
    ahead: int = 0,
) -> int:
    """Call ``work`` for each sentence. A bad line (exit-2 error: bad text, bytes not in
    the encoding, text the figure code refuses) in a batch is reported with its line
    number and the others still run; the result is 2 if any failed. Failures while
    working (exit 1) stop at once. Returns the exit code.

    ``work`` may return the rest of its sentence's work (a :class:`Later`: its figures are
    being drawn in the drawing pool); up to ``ahead`` of them wait while the next
    sentences are computed, and they are finished in input order, before any later
    sentence says anything."""
    if _single(sentences):
        for sentence in sentences:
            later = _one(sentence, work)
            if later is not None:
                later()
        return 0
    from attncli.cli.process import batch_started

    batch_started()
    bar, task = _bar(sentences, progress, quiet)
    run = _Batch(work, fail_fast, ahead, (bar, task))
    try:
        return run.all(sentences)
    finally:
        if bar is not None:
            bar.stop()


class _Batch:
    """The sentences of a batch in input order, some of them waiting to be finished."""

    def __init__(
        self,
        work: Callable[[Sentence], Optional[Later]],
        fail_fast: bool,
        ahead: int,
        bar: tuple[Optional[Progress], Optional[TaskID]],
    ) -> None:
        self.work, self.fail_fast, self.ahead, self.bar = work, fail_fast, ahead, bar
        self.failed = False
        self.waiting: deque[tuple[Sentence, Later]] = deque()

    def all(self, sentences: Iterable[Sentence]) -> int:
        for sentence in sentences:
            if not self.one(sentence) or not self.finish(self.ahead):
                return self.stop()
        if not self.finish(0):
            return self.stop()
        return 2 if self.failed else 0

    def stop(self) -> int:
        """--fail-fast met a bad line: what was drawn for the lines after it goes."""
        for _, later in self.waiting:
            later.drop()
        return 2

    def one(self, sentence: Sentence) -> bool:
        try:
            later = _one(sentence, self.work)
        except AttnError as exc:
            return self.finish(0) and self.report(sentence, exc)  # the lines before it first
        if later is None:
            self.advance()
        else:
            self.waiting.append((sentence, later))
        return True

    def finish(self, limit: int) -> bool:
        """Finish the oldest waiting sentences until at most ``limit`` wait; False when
        one failed and --fail-fast stops the batch."""
        while len(self.waiting) > limit:
            sentence, later = self.waiting.popleft()
            try:
                later()
            except AttnError as exc:
                if not self.report(sentence, exc):
                    return False
            else:
                self.advance()
        return True

    def report(self, sentence: Sentence, exc: AttnError) -> bool:
        """A failed sentence: said with its line (exit 2), or raised (exit 1); False when
        the batch stops here (--fail-fast)."""
        if exc.code != 2:
            raise AttnError(f"{where(sentence)}{exc.message}", exc.code) from None
        self.failed = True
        say("error", f"{where(sentence)}{exc.message}")
        self.advance()
        return not self.fail_fast

    def advance(self) -> None:
        bar, task = self.bar
        if bar is not None and task is not None:  # both or neither
            bar.advance(task)
