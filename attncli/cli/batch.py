"""Running one piece of work per sentence: per-line errors, --fail-fast, a progress bar."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from attncli.cli.inputs import Sentence
from attncli.errors import AttnError


def where(sentence: Sentence) -> str:
    if sentence.index is None:
        return ""
    return f"line {sentence.line} (sentence {sentence.index}): "


def run_batch(
    sentences: Sequence[Sentence],
    work: Callable[[Sentence], None],
    *,
    fail_fast: bool = False,
    progress: bool = True,
    quiet: bool = False,
) -> int:
    """Call ``work`` for each sentence. A bad line (exit-2 error) in a batch is reported
    with its line number and the others still run; the result is 2 if any failed.
    Failures while working (exit 1) stop at once. Returns the exit code."""
    if len(sentences) == 1:
        work(sentences[0])
        return 0
    from attncli.cli.process import batch_started

    batch_started()
    failed = False
    bar = None
    # a bar on a terminal stderr, unless stdout goes to the same screen (it would cut through)
    if progress and not quiet and sys.stderr.isatty() and not sys.stdout.isatty():
        from rich.console import Console
        from rich.progress import Progress

        # redirect_stdout=False: JSON lines must go to stdout, never into the bar on stderr
        bar = Progress(console=Console(stderr=True), transient=True, redirect_stdout=False)
        bar.start()
        task = bar.add_task("sentences", total=len(sentences))
    try:
        for sentence in sentences:
            try:
                work(sentence)
            except AttnError as exc:
                if exc.code != 2:
                    raise AttnError(f"{where(sentence)}{exc.message}", exc.code) from None
                failed = True
                sys.stderr.write(f"error: {where(sentence)}{exc.message}\n")
                sys.stderr.flush()
                if fail_fast:
                    return 2
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return 2 if failed else 0
