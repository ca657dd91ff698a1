"""Every command's skeleton: read the sentences → compute one result per sentence →
deliver it through the views the options ask for (figures, .npz, JSON, tables).

The Typer commands in :mod:`attncli.cli.app` only map their options to the objects
here, by name."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar

from attncli.cli.batch import Later
from attncli.cli.inputs import Sentence, read_sentences
from attncli.cli.output import FileProgress, ReaderGone, busy, deliver, out_console, warn
from attncli.errors import AttnError

if TYPE_CHECKING:
    from attncli.core.result import AttentionResult
    from attncli.figures.style import Style
    from attncli.view import Shown

R = TypeVar("R")  # what a command computes per sentence (a result, or a list of them)

# The library names settings; the command line names options.
OPTIONS = {"special_tokens": "--special/--no-special", "image_format": "--image-format"}


def option_name(setting: str) -> str:
    return OPTIONS.get(setting, "--" + setting.replace("_", "-"))


def in_option_terms(exc: AttnError) -> str:
    """The library's message with the setting it names replaced by the option's name."""
    if exc.setting and exc.message.startswith(exc.setting):
        return option_name(exc.setting) + exc.message[len(exc.setting) :]
    return exc.message


def figsize(value: Optional[str]) -> Optional[tuple[float, float]]:
    if value is None:
        return None
    try:
        w, h = (float(x) for x in value.replace("x", ",").split(","))
    except ValueError:
        raise AttnError(f"--figsize: expected W,H in inches (e.g. 8,6), not {value!r}") from None
    return (w, h)


@dataclass(frozen=True)
class Views:
    """What to show of each result, from the output options of a command."""

    style: Style
    out: Path = Path("attn_out")
    plot: bool = True
    matrix: str = "A_prime"
    hide_special: bool = False
    mean_heads: bool = False
    values: bool = False
    precision: int = 3
    preview: bool = False
    json: bool = False
    npz: Optional[Path] = None
    quiet: bool = False
    per_head: bool = True  # a figure per (layer, head); False: the overview only
    clean: bool = False  # remove what the previous run's manifest lists first
    trace_format: str = "text"  # text (Rich table), markdown or latex
    trace_figure: bool = False  # also trace.<format>, the matrices to scale
    command: str = "run"
    view: str = "heatmap"  # or "lines"
    query: Optional[int] = None  # the line view's highlighted query (1-based)
    html: Optional[Path] = None

    def check(self) -> Views:
        if self.view not in ("heatmap", "lines"):
            raise AttnError(f"--view: unknown view {self.view!r} (choose heatmap, lines)")
        return self

    @property
    def needs_scores(self) -> bool:
        """Whether any view asked for reads A (the scores) besides A'."""
        drawn = self.matrix == "A" and (self.plot or self.preview)
        return drawn or self.values or self.json or self.npz is not None


def each_sentence(
    sentences: Iterable[Sentence],
    work: Callable[[Sentence], Optional[Later]],
    *,
    fail_fast: bool,
    quiet: bool,
    ahead: int = 0,
) -> None:
    """:func:`attncli.cli.batch.run_batch`, its exit code, a closed pipe."""
    import typer

    from attncli.cli.batch import run_batch

    try:
        code = run_batch(sentences, work, fail_fast=fail_fast, progress=not quiet, quiet=quiet, ahead=ahead)
    except BrokenPipeError:
        raise ReaderGone() from None
    if code:
        raise typer.Exit(code)


@dataclass(frozen=True)
class Loop:
    """The part of a command's output options every sentence loop needs."""

    quiet: bool  # no progress bar, no tables
    out: Optional[Path]  # the folder figures go to (its manifest), if any
    clean: bool = False  # remove the previous run's figures first
    command: str = "run"  # named in the manifest


def each_result(
    text: Optional[str],
    encoding: str,
    compute: Callable[[Sentence, Any], R],
    deliver: Callable[[R, Sentence, Any], list[str] | Finish],
    loop: Loop,
    *,
    fail_fast: bool = False,
    prefetch: Optional[Callable[[list[Sentence], Any], None]] = None,
    warnings: Callable[[R], Iterable[str]] = lambda result: result.warnings,  # type: ignore[attr-defined]
    ahead: int = 0,
) -> None:
    """Every command's skeleton: read the sentences → ``compute(sentence, progress)`` →
    ``deliver(result, sentence, console)`` (which returns the files it wrote, or a
    :class:`Finish` that does the rest of the delivery later) → the manifest of the
    figures. With ``ahead``, up to that many sentences are computed and their figures
    started before the first of them is finished (in input order)."""
    sentences = read_sentences(text, encoding)
    console = out_console()
    progress = FileProgress(loop.quiet)
    written: list[str] = []
    if loop.clean and loop.out is not None:
        from attncli.cli import manifest

        manifest.clean(loop.out)
    try:
        if prefetch is not None:  # per block of the stream (stdin is not read whole)
            sentences.prefetching(lambda block: prefetch(block, progress))

        def work(sentence: Sentence) -> Optional[Later]:
            result = compute(sentence, progress)
            for w in warnings(result):
                warn(w if sentence.line is None or sentence.index is None else f"line {sentence.line}: {w}")
            done = deliver(result, sentence, console)
            if isinstance(done, list):
                written.extend(done)
                return None
            finish = done
            return Later(lambda: written.extend(finish()), finish.drop)

        each_sentence(sentences, work, fail_fast=fail_fast, quiet=loop.quiet, ahead=ahead)
    finally:
        progress.close()  # a bar cut short by an error must still give the cursor back
        if loop.out is not None and written and loop.out.is_dir():
            from attncli.cli import manifest

            manifest.write(loop.out, loop.command, written)


def show_results(
    text: Optional[str],
    encoding: str,
    compute: Callable[[Sentence, Any], AttentionResult],
    views: Views,
    *,
    fail_fast: bool = False,
    prefetch: Optional[Callable[[list[Sentence], Any], None]] = None,
) -> None:
    """Read → compute → deliver, for `run` and `model` alike. ``compute(sentence,
    progress)`` gives the result; ``prefetch(sentences, progress)`` may read shared
    inputs for a whole batch first. A batch with ``--html`` keeps its results for one
    page with a sentence picker, written at the end."""
    from attncli.figures.pool import cores, session

    page: list[AttentionResult] = []
    each_view = replace(views, html=None) if views.html is not None else views

    def deliver(result: AttentionResult, sentence: Sentence, console: Any) -> Finish:
        if views.html is not None and sentence.index is not None:
            page.append(result)
            return start_delivery(result, sentence, each_view, console)
        return start_delivery(result, sentence, views, console)

    loop = Loop(quiet=views.quiet, out=views.out if views.plot else None, clean=views.clean, command=views.command)
    # one drawing pool for the whole command: a batch sends it each sentence's figures and
    # keeps computing (and, in input order, finishing) while they are drawn
    with session(cores() if views.plot else 1) as pool:
        ahead = 2 * pool.size if pool is not None else 0  # a job queued behind each one drawing
        each_result(text, encoding, compute, deliver, loop, fail_fast=fail_fast, prefetch=prefetch, ahead=ahead)
    if page and views.html is not None:
        from attncli.html import write_html

        deliver_note(str(write_html(page, views.html)), views, out_console())


def deliver_note(path: str, views: Views, console: Any) -> None:
    """A file written once for a whole batch: its path on stdout (--quiet) or a line."""
    from attncli.cli.output import emit_line

    if views.json:
        return
    if views.quiet:
        emit_line(path)
    else:
        from rich.text import Text

        console.print(Text(f"wrote {path}"))


_SAID: set[str] = set()


@dataclass(frozen=True)
class Finish:
    """What :func:`start_delivery` leaves to do: call it for the files written."""

    rest: Callable[[], list[str]]
    drop: Callable[[], None]

    def __call__(self) -> list[str]:
        return self.rest()


def drawn(shown: Shown, views: Views, index: Optional[int]) -> tuple[list[str], list[str]]:
    """Every figure of one result, and the notes for the user (a job for the drawing pool
    in a batch): the paths written and the notes."""
    notes: list[str] = []
    files = [str(p) for p in draw(shown, views, index, notes)]
    if views.trace_figure:
        from attncli.figures.trace import trace_figure

        files.append(str(trace_figure(shown.result, views.out, views.style, index)))
    return files, notes


def _figures(shown: Shown, views: Views, sentence: Sentence) -> Callable[[], tuple[list[str], list[str]]]:
    """Draw the figures of one result: in a batch, a job for the command's drawing pool
    (waited for when the sentence is finished); otherwise here, now."""
    from attncli.figures.pool import active

    pool = active()
    if pool is not None and sentence.index is not None:
        from attncli.files import ensure_dir

        ensure_dir(views.out)  # the folder's lock is taken here, before the workers share it
        ticket = pool.submit(drawn, shown, views, sentence.index)
        return lambda: pool.result(ticket)  # drawn's pair
    count = len(shown.result.layers) * len(shown.result.heads)
    with busy(f"drawing {count} heads", count > 4 and sentence.index is None and not views.quiet):
        done = drawn(shown, views, sentence.index)
    return lambda: done


def deliver_result(result: AttentionResult, sentence: Sentence, views: Views, console: Any) -> list[str]:
    """Figures, then the .npz, then one JSON line, the paths, or tables."""
    return start_delivery(result, sentence, views, console)()


def start_delivery(result: AttentionResult, sentence: Sentence, views: Views, console: Any) -> Finish:
    """Start the figures of one result (in a batch, in the drawing pool); the
    :class:`Finish` returned waits for them, then writes the .npz, one JSON line, the
    paths, or tables."""
    from attncli.view import Shown

    shown = Shown(result, views.matrix, views.hide_special)
    figures = _figures(shown, views, sentence) if views.plot else (lambda: ([], []))

    def drop() -> None:
        for f in figures()[0]:
            Path(f).unlink(missing_ok=True)

    return Finish(lambda: _finish(shown, sentence, views, console, figures()), drop)


def _finish(
    shown: Shown, sentence: Sentence, views: Views, console: Any, figures: tuple[list[str], list[str]]
) -> list[str]:
    from attncli.core.stats import head_stats
    from attncli.export import arrays, to_json

    result = shown.result
    files, notes = list(figures[0]), figures[1]
    for note in notes:
        if note not in _SAID:  # once per run, not once per sentence of a batch
            _SAID.add(note)
            warn(note)
    if views.html is not None:
        from attncli.html import write_html

        files.append(str(write_html([result], views.html)))
    kept: list[list[dict[str, Any]]] = []

    def stats() -> list[dict[str, Any]]:  # only when a view shows them, and once
        if not kept:
            kept.append(head_stats(result))
        return kept[0]

    def show() -> None:
        from attncli.show.tables import print_result

        heading = f"sentence {sentence.index} (line {sentence.line})" if sentence.index else None
        print_result(
            console,
            result,
            values=views.values,
            precision=views.precision,
            heading=heading,
            stats=stats(),
            trace_format=views.trace_format,
        )
        if views.preview:
            from attncli.show.preview import preview

            preview(console, shown, views.style)

    deliver(
        sentence,
        files,
        npz=views.npz,
        arrays=lambda: arrays(result, mean_heads=views.mean_heads),
        make_json=lambda f: to_json(result, f, stats=stats(), mean_heads=views.mean_heads),
        show=show,
        json=views.json,
        quiet=views.quiet,
        console=console,
    )
    return files


def draw(shown: Shown, views: Views, sentence: Optional[int], notes: Optional[list[str]] = None) -> list[Path]:
    """The figures of one result, in the view asked for; ``notes`` collects warnings."""
    if views.view == "lines":
        from attncli.figures.lines import line_figures
        from attncli.files import ensure_dir

        out = ensure_dir(views.out)
        return line_figures(
            shown.result, out, views.style, query=views.query, hide_special=views.hide_special, sentence=sentence
        )
    from attncli.figures.select import figures

    return figures(
        shown, views.out, views.style, sentence, mean_heads=views.mean_heads, per_head=views.per_head, notes=notes
    )
