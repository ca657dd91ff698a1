"""``attncli survey DIR CORPUS…``: what each head does over a corpus (registered by
:mod:`attncli.cli.app`, which this module does not import). Maps options to
:mod:`attncli.core.survey_run` (local workers) or :mod:`attncli.core.survey_dask` and
renders the :class:`~attncli.core.survey.Summary`. No maths here."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from attncli.cli.options import (
    CausalOpt,
    DebugOpt,
    DimOpt,
    DpiOpt,
    EncodingOpt,
    FormatOpt,
    NormOpt,
    OutOpt,
    PlotOpt,
    PositionsOpt,
    QuietOpt,
    RandomHeadsOpt,
    SeedOpt,
    SpecialOpt,
    TokensTokenizerOpt,
)
from attncli.cli.output import emit_line, out_console, warn
from attncli.errors import AttnError

if TYPE_CHECKING:
    from distributed import Client
    from rich.progress import Progress, TaskID

    from attncli.core.survey import Acc, Summary
    from attncli.core.survey_run import Job
    from attncli.core.survey_source import Info, Spec

RANDOM = "random"


class SurveyProgress:
    """A bar on stderr (only when it is a terminal): sentences, sentences/s, ETA from the
    bytes of the corpus read (no ETA for stdin). Also says once that long lines are cut."""

    def __init__(self, total_bytes: Optional[int], enabled: bool) -> None:
        self.total = total_bytes
        self.enabled = enabled and sys.stderr.isatty()
        self.sentences = 0
        self.start = time.perf_counter()
        self.told_long = False
        self.bar: Optional[Progress] = None
        self.task: TaskID

    def __enter__(self) -> "SurveyProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("survey"),
                BarColumn(),
                TextColumn("{task.fields[sentences]} sentences, {task.fields[rate]:.1f}/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("survey", total=self.total, sentences=0, rate=0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, job: Job, acc: Acc) -> None:
        if acc.first_long and not self.told_long:
            where, n, limit = acc.first_long
            self._warn(
                f"{where} has {n} tokens, more than a window holds ({limit}): long lines are cut into"
                f" consecutive windows of at most {limit} tokens, each surveyed (said once)"
            )
            self.told_long = True
        self.sentences += acc.tallies.get("sentences", 0)
        if self.bar is not None and not job.induction:
            rate = self.sentences / max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, completed=job.done_bytes, sentences=self.sentences, rate=rate)

    def _warn(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(f"warning: {message}", markup=False, highlight=False)
        else:
            warn(message)


def _spec(folder: str, given: dict[str, Any]) -> Spec:
    """The source spec: a checkpoint folder (absolute, for workers elsewhere) or random weights."""
    from attncli.core.survey_source import Spec

    common = dict(
        window=given["window"],
        seed=given["seed"],
        induction=given["induction"],
        induction_len=given["induction_length"],
        special=given["special"],
    )
    if folder == RANDOM:
        from attncli.core.settings import Settings

        settings = Settings(
            tokenizer=given["tokenizer"],
            special_tokens=given["special"],
            dim=given["dim"],
            heads=given["heads"],
            norm=given["norm"],
            causal=given["causal"],
            positions=given["positions"],
            seed=given["seed"],
        )
        settings.check()
        return Spec(settings=settings, **common)
    for option in ("tokenizer", "heads"):
        if given[option] is not None:
            raise AttnError(f"--{option} applies to `survey random` only (a checkpoint brings its own)")
    return Spec(model=str(Path(folder).resolve()), **common)


def _check(given: dict[str, Any]) -> None:
    checks = {
        "--workers": (given["workers"], 1),
        "--top": (given["top"], 0),
        "--induction": (given["induction"], 0),
        "--induction-length": (given["induction_length"], 2),
        "--window": (given["window"] if given["window"] is not None else 2, 2),
    }
    for option, (value, least) in checks.items():
        if value < least:
            raise AttnError(f"{option} must be at least {least}, not {value}")
    if given["image_format"] not in ("png", "svg", "pdf"):
        raise AttnError(f"--image-format: unknown format {given['image_format']!r} (choose png, svg, pdf)")


def _corpus(corpus: Optional[list[str]]) -> list[str]:
    from attncli.core.survey_run import check_corpus

    paths = list(corpus or [])
    if not paths:
        if sys.stdin is None or sys.stdin.isatty():
            raise AttnError("no corpus: give text files (one sentence or document per line), or - for stdin")
        paths = ["-"]
    check_corpus(paths)
    return paths


def _run(spec: Spec, paths: list[str], given: dict[str, Any], progress: SurveyProgress) -> tuple[Info, Acc, bool]:
    """(info, accumulator, partial?) from local workers or the cluster."""
    from attncli.core.survey_run import Interrupted, chunks, describe, nonempty, read_lines, survey_local

    jobs = nonempty(chunks(read_lines(paths, given["encoding"])))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    client: Optional[Client] = None
    try:
        if given["dask"]:
            from attncli.core.survey_dask import check_workers, client_for, survey_dask

            client = client_for(given["dask"])
            info = check_workers(client, spec)
            with progress:
                acc = survey_dask(client, spec, jobs, progress)
        else:
            info = describe(spec)
            with progress:
                acc = survey_local(spec, jobs, given["workers"], progress)
        return info, acc, False
    except Interrupted as exc:
        if not given["partial"] or exc.partial is None:
            raise AttnError("interrupted (add --partial to keep what was surveyed)", 130) from None
        warn("interrupted: the result covers the part of the corpus surveyed so far (partial)")
        return (info, exc.partial, True)
    finally:
        signal.signal(signal.SIGINT, previous)
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]  # distributed's Client.close is not annotated


def _render(summary: Summary, info: Info, given: dict[str, Any]) -> None:
    from attncli.export import dumps
    from attncli.show.survey import table, to_json, write_csv

    files: list[str] = []
    if given["plot"]:
        from attncli.figures.survey import figures

        files += [str(p) for p in figures(summary, given["out"], given["image_format"], given["dpi"])]
    if given["csv"] is not None:
        files.append(str(write_csv(given["csv"], summary)))
    if given["json"]:
        emit_line(dumps(to_json(summary, info, files)))
    elif given["quiet"]:
        for f in files:
            emit_line(f)
    else:
        from rich.text import Text

        console = out_console()
        console.print(table(summary, info, given["top"]))
        for f in files:
            console.print(Text(f"wrote {f}"))


def survey(
    folder: Annotated[
        str,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help="A checkpoint folder (as for `model`), or `random` for run's random-weight attention"
            " (a baseline; a folder named random: write ./random).",
        ),
    ],
    corpus: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="CORPUS…",
            show_default=False,
            help="Text files, one sentence or document per line, or - for stdin [default: stdin].",
        ),
    ] = None,
    *,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            metavar="N",
            help=(
                "Processes surveying at once [default: the cores];"
                " 1 runs in this process when its BLAS kernels match a worker's."
            ),
            show_default=False,
        ),
    ] = os.cpu_count() or 1,
    dask: Annotated[
        Optional[str],
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            show_default=False,
            help="Run on a Dask cluster (e.g. tcp://10.0.0.5:8786); DIR must be at the same path on"
            ' every worker. Needs pip install "attncli[dask]".',
        ),
    ] = None,
    partial: Annotated[bool, typer.Option("--partial", help="On Ctrl-C, report what was surveyed so far.")] = False,
    window: Annotated[
        Optional[int],
        typer.Option(
            "--window",
            metavar="N",
            show_default=False,
            help="Tokens per window for long lines [default: the model's limit; random: 512].",
        ),
    ] = None,
    induction: Annotated[
        int, typer.Option("--induction", metavar="N", help="Random repeated sequences for the induction score.")
    ] = 32,
    induction_length: Annotated[
        int, typer.Option("--induction-length", metavar="T", help="Random tokens per half of those sequences.")
    ] = 20,
    seed: SeedOpt = 0,
    special: SpecialOpt = True,
    encoding: EncodingOpt = "utf-8",
    tokenizer: TokensTokenizerOpt = None,
    dim: DimOpt = 64,
    heads: RandomHeadsOpt = None,
    norm: NormOpt = "softmax",
    causal: CausalOpt = False,
    positions: PositionsOpt = "sinusoidal",
    top: Annotated[int, typer.Option("--top", metavar="N", help="Heads in the table (0: all).")] = 20,
    json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout, nothing else.")] = False,
    csv: Annotated[
        Optional[Path], typer.Option("--csv", metavar="FILE", show_default=False, help="Also write one row per head.")
    ] = None,
    out: OutOpt = Path("attn_out"),
    plot: PlotOpt = True,
    image_format: FormatOpt = "png",
    dpi: DpiOpt = 150,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Survey what every head does over a corpus: per layer and head, averaged over all
    queries with their spread, the entropy of each query's attention, the mean attention
    distance, the share to the token itself, the previous and next token, the first token,
    separators and punctuation; the previous-token, duplicate-token and induction scores;
    and labels from stated thresholds (docs/survey.md). Layers and heads are counted from 1.

    Results are the same for any number of workers. Lines longer than the model takes are
    cut into windows (said once on stderr). `random` as DIR surveys run's random weights
    (-r, -H, --norm, --causal, --positions, -t) as a baseline.

    Examples:

      attncli survey ./all-MiniLM-L6-v2 corpus.txt --workers 4 --csv heads.csv

      attncli survey random corpus.txt -H 8 --json

      attncli survey /shared/model big.txt --dask tcp://10.0.0.5:8786
    """
    from attncli.core.survey import Summary
    from attncli.core.survey_run import corpus_size

    given = locals()
    _check(given)
    spec = _spec(folder, given)
    paths = _corpus(corpus)
    progress = SurveyProgress(corpus_size(paths), not quiet and not json)
    info, acc, was_partial = _run(spec, paths, given, progress)
    if not acc.tallies.get("sentences"):
        raise AttnError("the corpus has no line that gives tokens")
    _render(Summary.of(acc, was_partial), info, given)
