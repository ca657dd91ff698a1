"""The command line: parse options, call the library, render. No maths here.

Heavy modules (numpy, matplotlib, tokenizers) are imported inside the commands so
that ``attncli --help`` starts fast.
"""

import atexit
import copy
import errno
import gc
import io
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from attncli import __version__
from attncli.errors import AttnError
from attncli.cli.options import (
    AnnotateOpt,
    CausalOpt,
    CmapOpt,
    DimOpt,
    DpiOpt,
    EmbeddingsOpt,
    EncodingOpt,
    FailFastOpt,
    FigsizeOpt,
    FontSizeOpt,
    FormatOpt,
    GridOpt,
    HeadsOpt,
    JsonOpt,
    MatrixOpt,
    MaxTokensOpt,
    MeanOpt,
    NormOpt,
    NpzOpt,
    OovOpt,
    OutOpt,
    PlotOpt,
    PositionsOpt,
    PrecisionOpt,
    PreviewOpt,
    QDimOpt,
    QuietOpt,
    ScaleOpt,
    SeedOpt,
    SharedOpt,
    SpecialOpt,
    TempOpt,
    TextArg,
    ThemeOpt,
    TitleOpt,
    TokenizerOpt,
    TransparentOpt,
    TransposeOpt,
    ValuesOpt,
    VDimOpt,
    VmaxOpt,
    VminOpt,
    WeightsOpt,
)
from attncli import stop
from attncli.cli.output import FileProgress, ReaderGone, busy, deliver, emit_line, out_console, say, warn, write_failed

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone costs ~0.1 s of start-up
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="See self-attention: tokenise → embed → Q, K, V → A = KᵀQ → A' → O = VA', "
    "with the dimension trace and one heatmap per head.\n\n"
    "Counting starts at 1 everywhere (tokens, heads, layers). Add --debug to any command "
    "for a traceback on errors.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """attncli: a command-line attention visualiser."""


def _figsize(value: Optional[str]) -> Optional[tuple[float, float]]:
    if value is None:
        return None
    try:
        w, h = (float(x) for x in value.replace("x", ",").split(","))
    except ValueError:
        raise AttnError(f"--figsize: expected W,H in inches (e.g. 8,6), not {value!r}") from None
    return (w, h)


def _style(given: dict):
    """The figure style from a command's options."""
    from attncli.figures.style import Style

    names = (
        "dpi",
        "cmap",
        "theme",
        "transparent",
        "annotate",
        "grid",
        "transpose",
        "title",
        "font_size",
        "vmin",
        "vmax",
        "shared_scale",
    )
    style = Style(
        image_format=given["image_format"].lower(), figsize=_figsize(given["figsize"]), **{k: given[k] for k in names}
    )
    style.check()
    return style


def _settings(given: dict):
    """Settings from a command's options (the parameters named as in :class:`Settings`)."""
    from attncli.core.pipeline import Settings

    settings = Settings(
        tokenizer=given["tokenizer"],
        special_tokens=given["special"],
        embeddings=given["embeddings"],
        oov=given["oov"],
        dim=given["dim"],
        heads=given["heads"],
        q_dim=given["q_dim"],
        v_dim=given["v_dim"],
        weights=str(given["weights"]) if given["weights"] else None,
        norm=given["norm"],
        temperature=given["temperature"],
        scale=given["scale"],
        causal=given["causal"],
        positions=given["positions"],
        seed=given["seed"],
        max_tokens=given["max_tokens"],
        encoding=given["encoding"],
    )
    settings.check()
    return settings


def each_sentence(sentences, work, **options) -> None:
    """Every command's loop: :func:`attncli.batch.run_batch`, its exit code, a closed pipe."""
    from attncli.cli.batch import run_batch

    try:
        code = run_batch(sentences, work, **options)
    except BrokenPipeError:
        raise ReaderGone() from None
    if code:
        raise typer.Exit(code)


@app.command()
def run(
    text: TextArg = None,
    tokenizer: TokenizerOpt = None,
    special: SpecialOpt = True,
    embeddings: EmbeddingsOpt = "random",
    oov: OovOpt = "random",
    dim: DimOpt = 8,
    heads: HeadsOpt = None,
    q_dim: QDimOpt = None,
    v_dim: VDimOpt = None,
    weights: WeightsOpt = None,
    norm: NormOpt = "softmax",
    temperature: TempOpt = 1.0,
    scale: ScaleOpt = True,
    causal: CausalOpt = False,
    positions: PositionsOpt = "none",
    seed: SeedOpt = 0,
    max_tokens: MaxTokensOpt = 512,
    encoding: EncodingOpt = "utf-8",
    out: OutOpt = Path("attn_out"),
    plot: PlotOpt = True,
    image_format: FormatOpt = "png",
    dpi: DpiOpt = 150,
    cmap: CmapOpt = None,
    theme: ThemeOpt = "light",
    transparent: TransparentOpt = False,
    annotate: AnnotateOpt = None,
    grid: GridOpt = True,
    transpose: TransposeOpt = False,
    figsize: FigsizeOpt = None,
    title: TitleOpt = None,
    font_size: FontSizeOpt = None,
    vmin: VminOpt = None,
    vmax: VmaxOpt = None,
    shared_scale: SharedOpt = None,
    matrix: MatrixOpt = "A_prime",
    mean_heads: MeanOpt = False,
    values: ValuesOpt = False,
    precision: PrecisionOpt = 3,
    preview: PreviewOpt = False,
    json: JsonOpt = False,
    npz: NpzOpt = None,
    quiet: QuietOpt = False,
    fail_fast: FailFastOpt = False,
) -> None:
    """Tokenise TEXT, run self-attention, print the dimension trace and save one heatmap per head.

    Matrices keep the notes' layout: A[i, j] = k^i · q^j, keys i down the rows, queries j
    across the columns, so each column of A' sums to 1 under softmax.

    Examples:

      attncli run "The cat sat on the mat ."

      attncli run "The cat sat on the mat ." -H 2 --values

      cat sentences.txt | attncli run --json --no-plot | jq .n
    """
    from attncli.core import pipeline
    from attncli.export import arrays, to_json
    from attncli.figures.select import MATRICES, run_figures
    from attncli.cli.inputs import read_sentences
    from attncli.core.stats import head_stats
    from attncli.core.stats import mean_heads as mean_of

    settings = _settings(locals())
    if matrix not in MATRICES:
        raise AttnError(f"--matrix: unknown matrix {matrix!r} (choose A, A_prime)")
    style = _style(locals())
    sentences = read_sentences(text, encoding)
    console = out_console()
    progress = FileProgress(quiet)
    try:
        sentences.prefetching(lambda texts: pipeline.prefetch(texts, settings, progress))
    except BaseException:
        progress.close()
        raise

    def work(sentence) -> None:
        result = pipeline.run(sentence.text, settings, progress)
        for w in result.warnings:
            warn(w if sentence.line is None else f"line {sentence.line}: {w}")
        files: list[str] = []
        if plot:
            with busy(
                f"drawing {len(result.heads)} heads", len(result.heads) > 4 and sentence.index is None and not quiet
            ):
                files += [str(p) for p in run_figures(result, out, style, matrix, sentence.index, mean_heads)]
        stats = head_stats(result)
        extra = {"stats": stats}
        if mean_heads:
            extra["mean_heads"] = {"A_prime": mean_of(result).tolist()}

        def show() -> None:
            from attncli.show import tables
            from attncli.core.stats import stats_table

            heading = f"sentence {sentence.index} (line {sentence.line})" if sentence.index else None
            tables.print_run(console, result, values, precision, heading)
            console.print(stats_table(stats))
            if preview:
                from attncli.show.preview import preview_heads

                preview_heads(console, result, matrix, style)

        deliver(
            sentence,
            files,
            npz,
            lambda: arrays(result),
            lambda f: to_json(result, f, extra),
            show,
            json,
            quiet,
            console,
        )

    try:
        each_sentence(sentences, work, fail_fast=fail_fast, progress=not quiet, quiet=quiet)
    finally:
        progress.close()  # a bar cut short by an error must still give the cursor back


@app.command()
def explain(
    text: TextArg = None,
    query: Annotated[
        int, typer.Option("--query", "-j", metavar="J", help="The query token j to follow, counted from 1.")
    ] = 1,
    head: Annotated[int, typer.Option("--head", metavar="H", help="Which head, counted from 1.")] = 1,
    tokenizer: TokenizerOpt = None,
    special: SpecialOpt = True,
    embeddings: EmbeddingsOpt = "random",
    oov: OovOpt = "random",
    dim: DimOpt = 8,
    heads: HeadsOpt = None,
    q_dim: QDimOpt = None,
    v_dim: VDimOpt = None,
    weights: WeightsOpt = None,
    norm: NormOpt = "softmax",
    temperature: TempOpt = 1.0,
    scale: ScaleOpt = True,
    causal: CausalOpt = False,
    positions: PositionsOpt = "none",
    seed: SeedOpt = 0,
    max_tokens: MaxTokensOpt = 512,
    encoding: EncodingOpt = "utf-8",
    precision: PrecisionOpt = 3,
    json: JsonOpt = False,
    fail_fast: FailFastOpt = False,
) -> None:
    """Walk through the notes' three steps for one query with real numbers: token by token
    (the vector perspective), then all at once (the matrix perspective), and check that
    column j of O equals b^j.

    Example: attncli explain "The cat sat on the mat ." --query 3
    """
    from attncli.core import pipeline
    from attncli.core.explain import as_json
    from attncli.core.explain import explain as explain_query
    from attncli.export import dumps
    from attncli.cli.inputs import read_sentences

    settings = _settings(locals())
    if precision < 0 or precision > 12:
        raise AttnError(f"--precision must be between 0 and 12, not {precision}")
    sentences = read_sentences(text, encoding)
    console = out_console()
    progress = FileProgress(json)
    try:
        sentences.prefetching(lambda texts: pipeline.prefetch(texts, settings, progress))
    except BaseException:
        progress.close()
        raise

    def work(sentence) -> None:
        result = pipeline.run(sentence.text, settings, progress)
        for w in result.warnings:
            warn(w)
        e = explain_query(result, query, head)
        if json:
            emit_line(dumps(as_json(e)))
        else:
            from attncli.show.explain import print_explanation

            print_explanation(console, e, precision)

    try:
        each_sentence(sentences, work, fail_fast=fail_fast, progress=not json)
    finally:
        progress.close()  # a bar cut short by an error must still give the cursor back


@app.command()
def model(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help="A checkpoint folder: config.json, model.safetensors, tokenizer.json"
            " (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, DistilBERT or GPT-2).",
        ),
    ],
    text: TextArg = None,
    layer: Annotated[
        Optional[str],
        typer.Option(
            "--layer",
            metavar="L",
            help="Layers to show, counted from 1: 3, 1,4 or 2-5 [default: all].",
            show_default=False,
        ),
    ] = None,
    head: Annotated[
        Optional[str],
        typer.Option(
            "--head",
            metavar="H",
            help="Heads to show, counted from 1: 3, 1,4 or 2-5 [default: all].",
            show_default=False,
        ),
    ] = None,
    rollout: Annotated[
        bool, typer.Option("--rollout", help="Also attention rollout (Abnar & Zuidema 2020) through the layers.")
    ] = False,
    mean_heads: Annotated[
        bool, typer.Option("--mean-heads", help="Also the mean of A' over heads, per layer.")
    ] = False,
    hide_special: Annotated[
        bool,
        typer.Option("--hide-special", help="Leave [CLS], [SEP] and the like out of figures (columns renormalised)."),
    ] = False,
    float64: Annotated[
        bool, typer.Option("--float64", help="Compute in float64 (for checking); float32 by default.")
    ] = False,
    special: SpecialOpt = True,
    max_tokens: MaxTokensOpt = 512,
    encoding: EncodingOpt = "utf-8",
    out: OutOpt = Path("attn_out"),
    plot: PlotOpt = True,
    image_format: FormatOpt = "png",
    dpi: DpiOpt = 150,
    cmap: CmapOpt = None,
    theme: ThemeOpt = "light",
    transparent: TransparentOpt = False,
    annotate: AnnotateOpt = None,
    grid: Annotated[
        bool, typer.Option("--grid/--no-grid", help="Also draw the layers × heads overview, model.<format>.")
    ] = True,
    transpose: TransposeOpt = False,
    figsize: FigsizeOpt = None,
    title: TitleOpt = None,
    font_size: FontSizeOpt = None,
    vmin: VminOpt = None,
    vmax: VmaxOpt = None,
    shared_scale: SharedOpt = None,
    preview: PreviewOpt = False,
    json: JsonOpt = False,
    npz: NpzOpt = None,
    quiet: QuietOpt = False,
    fail_fast: FailFastOpt = False,
) -> None:
    """Show the real attention of a pretrained checkpoint in a local folder: every layer and
    head, computed with numpy (no torch), in the notes' layout (keys down, queries across).

    Layers and heads are counted from 1 (--layer 1 is the first block, index 0 in Hugging Face).

    Example: attncli model ./all-MiniLM-L6-v2 "The cat sat on the mat ." --layer 6 --head 1-4
    """
    from attncli.cli.inputs import read_sentences
    from attncli.core.models import load
    from attncli.core.models.forward import n_heads, n_layers, run_model
    from attncli.modelview import View, arrays, figures, parse_indices, print_model
    from attncli.modelview import to_json as model_json

    style = _style(locals())
    if max_tokens < 1:
        raise AttnError(f"--max-tokens must be a positive whole number, not {max_tokens}")
    ck = load(folder)
    L = n_layers(ck)
    H = n_heads(ck)
    layers = parse_indices(layer, L, "--layer")
    heads = parse_indices(head, H, "--head")
    sentences = read_sentences(text, encoding)
    console = out_console()

    def work(sentence) -> None:
        result = run_model(
            str(folder), sentence.text, special, float64, None if rollout else max(layers), max_tokens, ck
        )
        view = View(result, layers, heads, hide_special, rollout, mean_heads)
        files = []
        if plot:
            count = len(layers) * len(heads)
            with busy(f"drawing {count} heads", count > 4 and sentence.index is None and not quiet):
                files = [str(p) for p in figures(view, out, style, sentence.index)]

        def show() -> None:
            print_model(console, view)
            if preview:
                from attncli.show.preview import preview_matrices

                mats = [
                    (f"layer {l}, head {h}: A′{view.note()}", view.shown(view.A_prime(l, h)))
                    for l in layers
                    for h in heads
                ]
                preview_matrices(console, mats, view.tokens, style.transpose, style.cmap)

        deliver(sentence, files, npz, lambda: arrays(view), lambda f: model_json(view, f), show, json, quiet, console)

    each_sentence(sentences, work, fail_fast=fail_fast, progress=not quiet, quiet=quiet)


@app.command()
def tokens(
    text: TextArg = None,
    tokenizer: TokenizerOpt = None,
    special: SpecialOpt = True,
    encoding: EncodingOpt = "utf-8",
    json: JsonOpt = False,
    fail_fast: FailFastOpt = False,
) -> None:
    """Show how TEXT is tokenised: tokens (numbered from 1), ids and character offsets
    (start, end) into TEXT, end exclusive as in a Python slice.

    Example: attncli tokens "Don't panic." -t bert
    """
    from attncli.export import dumps
    from attncli.cli.inputs import read_sentences
    from attncli.core.tokenize import tokenize

    sentences = read_sentences(text, encoding)
    console = out_console()

    def work(sentence) -> None:
        if not sentence.text.strip():
            raise AttnError("the text is empty")
        toks = tokenize(sentence.text, tokenizer or "whitespace", special)
        if json:
            obj = {
                "text": sentence.text,
                "tokens": toks.tokens,
                "ids": toks.ids,
                "offsets": [list(o) for o in toks.offsets],
                "special": toks.special,
                "n": len(toks),
            }
            if sentence.index is not None:
                obj["line"] = sentence.line
            emit_line(dumps(obj))
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(f"{len(toks)} tokens of {sentence.text!r}"), title_justify="left", header_style="bold")
        for col, just in (
            ("#", "right"),
            ("token", "left"),
            ("id", "right"),
            ("start", "right"),
            ("end", "right"),
            ("special", "center"),
        ):
            table.add_column(col, justify=just)
        for k, (t, i, (s, e), sp) in enumerate(zip(toks.tokens, toks.ids, toks.offsets, toks.special), 1):
            table.add_row(str(k), Text(t), "—" if i is None else str(i), str(s), str(e), "yes" if sp else "")
        console.print(table)

    each_sentence(sentences, work, fail_fast=fail_fast, progress=not json, quiet=json)


def _only(name: str) -> typer.Typer:
    """The app with just the command named, if it names one: Typer builds every command's
    options before parsing, and a run needs only its own (the group and its help are the
    same). Anything else (an option, a typo) gets the whole app and its messages."""
    chosen = [c for c in app.registered_commands if (c.name or c.callback.__name__) == name]
    if not chosen:
        return app
    sub = copy.copy(app)
    sub.registered_commands = chosen
    return sub


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry: one-line errors, exit codes 0/1/2/130 (128 + n for other
    signals), quiet broken pipes."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    if debug:
        args.remove("--debug")
    stop.install()
    guard_streams()
    try:
        command = typer.main.get_command(_only(args[0]) if args else app)
        code = command.main(args, prog_name="attncli", standalone_mode=False)
        _flush_stdout()
    except (BrokenPipeError, ReaderGone):
        _quiet_pipe()
    except typer.Exit as exc:
        code = exc.exit_code
    except BaseException as exc:  # noqa: B036 (signals, tokenizers' PanicException: all end in one line)
        if debug and not isinstance(exc, (SystemExit, stop.Interrupted)):
            raise
        _fail(*_one_line(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: BaseException) -> tuple[str, int]:
    """The ``error:`` message and exit code for anything that ends a command."""
    if isinstance(exc, AttnError):
        return exc.message, exc.code
    if isinstance(exc, stop.Interrupted):
        return exc.message, exc.code
    if isinstance(exc, (typer.Abort, KeyboardInterrupt)):
        return "interrupted", 130
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, typer.exceptions.TyperException):  # usage errors: bad option, missing value…
        if type(exc).__name__ == "NoArgsIsHelpError":  # `attncli` or `attncli model` alone: the help
            sys.stdout.write(exc.format_message() + "\n")
            _flush_stdout()
            sys.exit(0)
        return (exc.format_message().splitlines() or [""])[0], getattr(exc, "exit_code", 2)
    if isinstance(exc, MemoryError):
        return "out of memory (the input needs more than this machine or its limits allow)", 1
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read", 2
    if type(exc).__name__ == "PanicException":  # the Rust side of tokenizers gave up
        reason = (str(exc).splitlines() or [""])[0]
        return f"the tokenizer failed on this input (it panicked: {reason})", 2
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}", 1
    if not isinstance(exc, Exception):
        raise exc
    return f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise write_failed(exc) from None


def guard_streams() -> None:
    """Streams we can trust. A closed stdin, stdout or stderr (``>&-``) gets /dev/null on
    its descriptor, so no file we open can take its number (stdout opened read-only:
    every write to it fails, and says so); an unbuffered stdout (PYTHONUNBUFFERED) is
    buffered again, because a raw write may write only part of what it is given and the
    text layer does not check; a stdout whose encoding cannot show a character shows it
    escaped (``PYTHONIOENCODING=ascii``) instead of failing."""
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_RDONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            new = os.open(os.devnull, flags)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
            if fd == 1:
                sys.stdout = open(1, "w", closefd=False)
            elif fd == 2:
                sys.stderr = open(2, "w", closefd=False)
    out = sys.stdout
    if out is None:
        return
    raw = getattr(out, "buffer", None)
    if isinstance(raw, io.RawIOBase):  # PYTHONUNBUFFERED=1: put a checked buffer back
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(raw), encoding=out.encoding, errors="backslashreplace", line_buffering=True
        )
    elif isinstance(out, io.TextIOWrapper) and out.errors == "strict":
        try:
            out.reconfigure(errors="backslashreplace")
        except (ValueError, io.UnsupportedOperation):
            pass


_finished: list[int] = []  # main()'s exit code, once it has one


def _skip_teardown() -> None:
    """The last exit handler: flush, and end without Python's teardown of every module
    and object, which is pure overhead once the work is done and every file is closed."""
    if _finished:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(_finished[0])


def entry() -> None:
    """The console script: :func:`main` in a short-lived process. Start-up creates ~30k
    objects that live to the end, so the cycle collector stays off until a batch begins
    (:func:`attncli.batch.run_batch` turns it on), and the end skips the teardown. Together
    ~15% of a model run (bench/README.md). Other exit handlers still run first."""
    gc.disable()
    atexit.register(_skip_teardown)  # registered first, so run last
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            _finished.append(exc.code)
        raise
    except stop.Interrupted as exc:  # between main() ending and here
        stop.exit_now(exc)


def _fail(message: str, code: int) -> None:
    """One ``error:`` line (made safe: a newline in a path cannot forge a second line),
    then exit with ``code``."""
    try:
        say("error", message)
    finally:
        sys.exit(code)


def _quiet_pipe() -> None:
    """The reader went away (``| head``): stop quietly, as shell tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
