"""The command line: parse options, call the library, render. No maths here.

Heavy modules (numpy, matplotlib, tokenizers) are imported inside the commands so
that ``attncli --help`` starts fast.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, Optional

import typer

from attncli import __version__, stop
from attncli.cli.options import (
    AnnotateOpt,
    CausalOpt,
    CleanOpt,
    CmapOpt,
    DebugOpt,
    DimOpt,
    DpiOpt,
    EmbeddingsOpt,
    EncodingOpt,
    FailFastOpt,
    FigsizeOpt,
    Float64Opt,
    FontOpt,
    FontSizeOpt,
    FormatOpt,
    GridOpt,
    HeadsOpt,
    HtmlOpt,
    JsonOpt,
    MatrixOpt,
    MaxTokensOpt,
    MeanOpt,
    ModelSharedOpt,
    NormOpt,
    NpzOpt,
    OovOpt,
    OutOpt,
    PlotOpt,
    PositionsOpt,
    PrecisionOpt,
    PreviewOpt,
    QDimOpt,
    QueryOpt,
    QuietOpt,
    ScaleOpt,
    SeedOpt,
    SharedOpt,
    SpecialOpt,
    StyleOpt,
    TempOpt,
    TextArg,
    ThemeOpt,
    TitleOpt,
    TokenizerOpt,
    TokensTokenizerOpt,
    TraceFigureOpt,
    TraceFormatOpt,
    TransparentOpt,
    TransposeOpt,
    ValuesOpt,
    VDimOpt,
    ViewOpt,
    VmaxOpt,
    VminOpt,
    WeightsOpt,
)
from attncli.cli.output import ReaderGone, emit_line, out_console, say, write_failed
from attncli.errors import AttnError

if TYPE_CHECKING:
    from attncli.cli.inputs import Sentence
    from attncli.core.result import AttentionResult
    from attncli.core.settings import Settings
    from attncli.figures.style import Style


def _usage_without_braces() -> None:
    """Typer writes a required argument as ``{DIR}`` in usage lines; Click and the README
    write ``DIR`` (brackets alone mark what is optional)."""
    from typer.core import TyperArgument

    original = TyperArgument.make_metavar
    if getattr(original, "_attncli", False):
        return

    def make_metavar(self, ctx, *, usage: bool = False) -> str:  # type: ignore[no-untyped-def]
        text = original(self, ctx, usage=usage)
        return text[1:-1] if usage and text.startswith("{") and text.endswith("}") else text

    make_metavar._attncli = True  # type: ignore[attr-defined]
    TyperArgument.make_metavar = make_metavar  # type: ignore[method-assign]


_usage_without_braces()

app = typer.Typer(
    add_completion=True,
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


STYLE_DEFAULTS: dict[str, Any] = {
    "image_format": "png",
    "figsize": None,
    "dpi": 150,
    "cmap": None,
    "theme": "light",
    "transparent": False,
    "annotate": None,
    "grid": True,
    "transpose": False,
    "title": None,
    "font_size": None,
    "vmin": None,
    "vmax": None,
    "shared_scale": None,
    "font": None,
}


def style_from(ctx: typer.Context, options: dict[str, Any], style_file: Optional[Path], **fixed: Any) -> Style:
    """The figure style from a command's options (by name), the preset (``--style FILE`` or
    ./attncli.toml) filling in what the command line left at its default, and ``fixed``
    values for options the command does not have."""
    from attncli.cli.presets import apply

    merged = apply(ctx, options, style_file)
    return _style(**{k: merged.get(k, fixed.get(k, v)) for k, v in STYLE_DEFAULTS.items()})


def _style(
    *,
    image_format: str,
    figsize: Optional[str],
    dpi: int,
    cmap: Optional[str],
    theme: str,
    transparent: bool,
    annotate: Optional[bool],
    grid: bool,
    transpose: bool,
    title: Optional[str],
    font_size: Optional[float],
    vmin: Optional[float],
    vmax: Optional[str],
    shared_scale: Optional[bool],
    font: Optional[str] = None,
) -> Style:
    """The figure style, option by option."""
    from attncli.cli import flow
    from attncli.figures.style import Style

    style = Style(
        image_format=image_format.lower(),
        figsize=flow.figsize(figsize),
        dpi=dpi,
        cmap=cmap,
        theme=theme,
        transparent=transparent,
        annotate=annotate,
        grid=grid,
        transpose=transpose,
        title=title,
        font_size=font_size,
        vmin=vmin,
        vmax=None if vmax_auto(vmax) else parse_vmax(vmax),
        vmax_auto=vmax_auto(vmax),
        shared_scale=shared_scale,
        font=font,
    )
    style.check()
    return style


def trace_format_checked(value: str) -> str:
    if value not in ("text", "markdown", "latex"):
        raise AttnError(f"--trace-format: unknown format {value!r} (choose text, markdown, latex)")
    return value


def vmax_auto(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() == "auto"


def parse_vmax(value: Optional[str]) -> Optional[float]:
    """--vmax: a number, or auto (handled by the caller)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise AttnError(f"--vmax: expected a number or auto, not {value!r}") from None


@app.command()
def run(
    ctx: typer.Context,
    text: TextArg = None,
    *,
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
    float64: Float64Opt = False,
    out: OutOpt = Path("attn_out"),
    plot: PlotOpt = True,
    view: ViewOpt = "heatmap",
    query: QueryOpt = None,
    html: HtmlOpt = None,
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
    font: FontOpt = None,
    clean: CleanOpt = False,
    matrix: MatrixOpt = "A_prime",
    mean_heads: MeanOpt = False,
    values: ValuesOpt = False,
    precision: PrecisionOpt = 3,
    preview: PreviewOpt = False,
    json: JsonOpt = False,
    npz: NpzOpt = None,
    quiet: QuietOpt = False,
    fail_fast: FailFastOpt = False,
    trace_format: TraceFormatOpt = "text",
    trace_figure: TraceFigureOpt = False,
    style_file: StyleOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Tokenise TEXT, run self-attention, print the dimension trace and save one heatmap per head.

    Matrices keep the notes' layout: A[i, j] = k^i · q^j, keys i down the rows, queries j
    across the columns, so each column of A' sums to 1 under softmax.

    Examples:

      attncli run "The cat sat on the mat ."

      attncli run "The cat sat on the mat ." -H 2 --values

      cat sentences.txt | attncli run --json --no-plot | jq .n
    """
    options = dict(locals())
    from attncli.cli import flow
    from attncli.core import pipeline
    from attncli.core.settings import Settings

    settings = Settings(
        tokenizer=tokenizer,
        special_tokens=special,
        embeddings=embeddings,
        oov=oov,
        dim=dim,
        heads=heads,
        q_dim=q_dim,
        v_dim=v_dim,
        weights=str(weights) if weights else None,
        norm=norm,
        temperature=temperature,
        scale=scale,
        causal=causal,
        positions=positions,
        seed=seed,
        max_tokens=max_tokens,
        encoding=encoding,
        float64=float64,
    )
    settings.check()
    style = style_from(ctx, options, style_file)
    views = flow.Views(
        style=style,
        out=out,
        plot=plot,
        matrix=matrix,
        mean_heads=mean_heads,
        values=values,
        precision=_precision(precision),
        preview=preview,
        json=json,
        npz=npz,
        quiet=quiet,
        clean=clean,
        trace_format=trace_format_checked(trace_format),
        trace_figure=trace_figure,
        view=view,
        query=query,
        html=html,
    ).check()
    settings.keep_scores = views.needs_scores
    flow.show_results(
        text,
        encoding,
        lambda sentence, progress: pipeline.run(sentence.text, settings, progress),
        views,
        fail_fast=fail_fast,
        prefetch=lambda sentences, progress: pipeline.prefetch([s.text for s in sentences], settings, progress),
    )


def _precision(value: int) -> int:
    if value < 0 or value > 12:
        raise AttnError(f"--precision must be between 0 and 12, not {value}")
    return value


@app.command()
def explain(
    ctx: typer.Context,
    text: TextArg = None,
    *,
    query: Annotated[
        int, typer.Option("--query", "-j", metavar="J", help="The query token j to follow, counted from 1.")
    ] = 1,
    head: Annotated[int, typer.Option("--head", metavar="H", help="Which head, counted from 1.")] = 1,
    model: Annotated[
        Optional[Path],
        typer.Option(
            "--model",
            metavar="DIR",
            help="Walk through a checkpoint's own q, k, v at --layer instead of a run (a folder as for"
            " `attncli model`).",
            show_default=False,
        ),
    ] = None,
    layer: Annotated[int, typer.Option("--layer", metavar="L", help="With --model: the layer, counted from 1.")] = 1,
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
    out: Annotated[
        Optional[Path],
        typer.Option(
            "-o",
            "--out",
            metavar="DIR",
            help="Also write the steps as slide figures in DIR (explain_step1_vectors, explain_step2_weights,"
            " explain_step3_sum, explain_matrices).",
            show_default=False,
        ),
    ] = None,
    image_format: FormatOpt = "png",
    dpi: DpiOpt = 150,
    cmap: CmapOpt = None,
    theme: ThemeOpt = "light",
    transparent: TransparentOpt = False,
    font_size: FontSizeOpt = None,
    font: FontOpt = None,
    clean: CleanOpt = False,
    json: JsonOpt = False,
    fail_fast: FailFastOpt = False,
    style_file: StyleOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Walk through the notes' three steps for one query with real numbers: token by token
    (the vector perspective), then all at once (the matrix perspective), and check that
    column j of O equals b^j. -o DIR also draws the steps as slide figures; --model DIR
    walks through a checkpoint's own vectors at --layer.

    Examples:

      attncli explain "The cat sat on the mat ." --query 3 -o slides

      attncli explain "The cat sat on the mat ." --model ./all-MiniLM-L6-v2 --layer 6 --head 2 -j 3
    """
    options = dict(locals())
    from attncli.cli.explaining import ExplainViews, explain_results

    _precision(precision)
    style = style_from(ctx, options, style_file, grid=False)
    views = ExplainViews(query, head, precision, json, out, style, clean)
    if model is not None:
        compute, prefetch = _model_vectors(model, layer, head, special, max_tokens), None
    else:
        settings = run_settings(locals(), float64=True)  # the 1e-12 agreement check is a proof: float64
        compute = lambda sentence, progress: _run(sentence.text, settings, progress)  # noqa: E731
        prefetch = lambda sentences, progress: _prefetch([s.text for s in sentences], settings, progress)  # noqa: E731
    explain_results(text, encoding, compute, views, fail_fast=fail_fast, prefetch=prefetch)


RUN_SETTINGS = (
    "tokenizer",
    "embeddings",
    "oov",
    "dim",
    "heads",
    "q_dim",
    "v_dim",
    "norm",
    "temperature",
    "scale",
    "causal",
    "positions",
    "seed",
    "max_tokens",
    "encoding",
)


def run_settings(options: dict[str, Any], *, float64: bool = False) -> Settings:
    """A run's Settings from a command's options, by name (float32 unless asked)."""
    from attncli.core.settings import Settings

    settings = Settings(
        special_tokens=options["special"],
        weights=str(options["weights"]) if options["weights"] else None,
        **{k: options[k] for k in RUN_SETTINGS},
        float64=float64,
    )
    settings.check()
    return settings


def _run(text: str, settings: Settings, progress: Any) -> AttentionResult:
    from attncli.core import pipeline

    return pipeline.run(text, settings, progress)


def _prefetch(texts: list[str], settings: Settings, progress: Any) -> None:
    from attncli.core import pipeline

    pipeline.prefetch(texts, settings, progress)


def _model_vectors(
    folder: Path, layer: int, head: int, special: bool, max_tokens: int
) -> Callable[[Sentence, Any], AttentionResult]:
    """compute(sentence, progress) for `explain --model`: one layer and head, with its q, k, v."""
    from attncli.core.models import load
    from attncli.core.models.forward import Select, n_heads, n_layers, run_model

    ck = load(folder)
    if not 1 <= layer <= n_layers(ck):
        raise AttnError(f"--layer {layer}: the model has {n_layers(ck)} (count from 1)")
    if not 1 <= head <= n_heads(ck):
        raise AttnError(f"--head {head}: the model has {n_heads(ck)} (count from 1)")
    select = Select(layers=[layer], heads=[head], special_tokens=special, max_tokens=max_tokens, vectors=True)
    return lambda sentence, _: run_model(folder, sentence.text, select, ck)


@app.command()
def model(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            show_default=False,
            help="A checkpoint folder (config.json, model.safetensors, tokenizer.json) or a .gguf file."
            " Architectures: BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, DistilBERT, GPT-2, Llama (2, 3, 3.x,"
            " TinyLlama, SmolLM), Mistral, Qwen2, Qwen3, Gemma, Gemma 2, Gemma 3 (text, or the language model"
            " of an image+text checkpoint).",
        ),
    ],
    text: TextArg = None,
    *,
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
    float64: Float64Opt = False,
    generate: Annotated[
        int,
        typer.Option(
            "--generate",
            metavar="N",
            help="Decoders of the Llama family: continue the text greedily by N tokens first, and show the"
            " attention over prompt and continuation (JSON: generated).",
        ),
    ] = 0,
    special: SpecialOpt = True,
    max_tokens: MaxTokensOpt = 512,
    encoding: EncodingOpt = "utf-8",
    out: OutOpt = Path("attn_out"),
    plot: PlotOpt = True,
    view: ViewOpt = "heatmap",
    query: QueryOpt = None,
    html: HtmlOpt = None,
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
    shared_scale: ModelSharedOpt = None,
    font: FontOpt = None,
    clean: CleanOpt = False,
    all_figures: Annotated[
        bool,
        typer.Option(
            "--all-figures",
            help="A figure for every head [default: model.<format> only, plus one per head selected"
            " with --layer/--head].",
        ),
    ] = False,
    preview: PreviewOpt = False,
    json: JsonOpt = False,
    npz: NpzOpt = None,
    quiet: QuietOpt = False,
    fail_fast: FailFastOpt = False,
    trace_format: TraceFormatOpt = "text",
    trace_figure: TraceFigureOpt = False,
    style_file: StyleOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show the real attention of a checkpoint on disk (a Hugging Face folder or a GGUF file):
    every layer and head, computed with numpy (no torch), in the notes' layout (keys down,
    queries across). Grouped-query models say which query heads share a key/value head.

    Layers and heads are counted from 1 (--layer 1 is the first block, index 0 in Hugging Face).

    Examples:

      attncli model ./all-MiniLM-L6-v2 "The cat sat on the mat ." --layer 6 --head 1-4

      attncli model ./SmolLM2-135M.Q4_0.gguf "The capital of France is" --generate 5 --layer 1
    """
    options = dict(locals())
    from attncli.cli import flow
    from attncli.core.models import load
    from attncli.core.models.forward import Select, n_heads, n_layers, run_model

    style = style_from(ctx, options, style_file)
    if max_tokens < 1:
        raise AttnError(f"--max-tokens must be a positive whole number, not {max_tokens}")
    ck = load(folder)
    select = Select(
        layers=parse_indices(layer, n_layers(ck), "--layer"),
        heads=parse_indices(head, n_heads(ck), "--head"),
        mean_heads=mean_heads,
        rollout=rollout,
        special_tokens=special,
        float64=float64,
        max_tokens=max_tokens,
        generate=_not_negative(generate, "--generate"),
    )
    views = flow.Views(
        style=style,
        out=out,
        plot=plot,
        hide_special=hide_special,
        mean_heads=mean_heads,
        preview=preview,
        json=json,
        npz=npz,
        quiet=quiet,
        clean=clean,
        trace_format=trace_format_checked(trace_format),
        trace_figure=trace_figure,
        command="model",
        per_head=all_figures or layer is not None or head is not None or not grid,
        view=view,
        query=query,
        html=html,
    ).check()
    flow.show_results(
        text, encoding, lambda sentence, _: run_model(folder, sentence.text, select, ck), views, fail_fast=fail_fast
    )


@app.command()
def compare(
    ctx: typer.Context,
    text: TextArg = None,
    *,
    norm: Annotated[
        str, typer.Option("--norm", metavar="A,B,…", help="Normalisations to compare: softmax,sparsemax,relu.")
    ] = "softmax",
    temperature: Annotated[
        str, typer.Option("--temperature", metavar="T,…", help="Softmax temperatures to compare: 0.5,1,2.")
    ] = "1",
    causal: Annotated[str, typer.Option("--causal", metavar="off,on", help="Without and/or with the causal mask.")] = (
        "off"
    ),
    head: Annotated[int, typer.Option("--head", metavar="H", help="Which head to draw, counted from 1.")] = 1,
    tokenizer: TokenizerOpt = None,
    special: SpecialOpt = True,
    embeddings: EmbeddingsOpt = "random",
    oov: OovOpt = "random",
    dim: DimOpt = 8,
    heads: HeadsOpt = None,
    q_dim: QDimOpt = None,
    v_dim: VDimOpt = None,
    weights: WeightsOpt = None,
    scale: ScaleOpt = True,
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
    transpose: TransposeOpt = False,
    figsize: FigsizeOpt = None,
    title: TitleOpt = None,
    font_size: FontSizeOpt = None,
    font: FontOpt = None,
    vmin: VminOpt = None,
    vmax: VmaxOpt = None,
    style_file: StyleOpt = None,
    clean: CleanOpt = False,
    json: Annotated[
        bool, typer.Option("--json", help="One JSON object per setting on stdout (JSON Lines), nothing else.")
    ] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run TEXT under several settings and draw A' of one head for each, side by side on one
    colour scale (compare.<format>); --json prints each setting's result as one JSON line.

    Examples:

      attncli compare "The cat sat on the mat ." --norm softmax,sparsemax,relu

      attncli compare "The cat sat on the mat ." --temperature 0.5,1,2 --causal off,on
    """
    options = dict(locals())
    from attncli.cli.compare import CompareViews, compare_results
    from attncli.core.compare import parse_list

    lists = {k: parse_list(k, options[k]) for k in ("norm", "temperature", "causal")}
    base = run_settings({**options, "norm": lists["norm"][0], "temperature": 1.0, "causal": False})
    style = style_from(ctx, options, style_file, grid=False)
    views = CompareViews(style, out, head, plot, json, quiet, clean)
    compare_results(text, encoding, base, lists, views)


def _not_negative(value: int, option: str) -> int:
    if value < 0:
        raise AttnError(f"{option} must be 0 or more, not {value}")
    return value


def parse_indices(spec: Optional[str], upper: int, option: str) -> list[int]:
    """``"1,3-5"`` → [1, 3, 4, 5]; counted from 1; None → all of 1…upper."""
    import re

    if spec is None or spec.strip().lower() == "all":
        return list(range(1, upper + 1))
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise AttnError(f"{option}: {part!r} is not a number or a range like 2-4 (counted from 1)")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a > b:
            raise AttnError(f"{option}: the range {part!r} runs backwards")
        for k in range(a, b + 1):
            if not 1 <= k <= upper:
                raise AttnError(f"{option} {k}: the model has {upper} (count from 1)")
            if k not in out:
                out.append(k)
    return out


@app.command()
def tokens(
    text: TextArg = None,
    *,
    tokenizer: TokensTokenizerOpt = None,
    special: SpecialOpt = True,
    encoding: EncodingOpt = "utf-8",
    json: JsonOpt = False,
    fail_fast: FailFastOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show how TEXT is tokenised: tokens (numbered from 1), ids and character offsets
    (start, end) into TEXT, end exclusive as in a Python slice.

    Example: attncli tokens "Don't panic." -t bert
    """
    from attncli.cli import flow
    from attncli.cli.inputs import read_sentences
    from attncli.core.tokenize import tokenize
    from attncli.export import dumps

    sentences = read_sentences(text, encoding)
    console = out_console()

    def work(sentence: Sentence) -> None:
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
        just: Literal["left", "center", "right"]
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

    flow.each_sentence(sentences, work, fail_fast=fail_fast, quiet=json)


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry: one-line errors, exit codes 0/1/2/130 (128 + n for other
    signals, handled in :mod:`attncli.stop`), quiet broken pipes."""
    from attncli.cli.process import only

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    if debug:
        args.remove("--debug")
    stop.install()
    guard_streams()
    if not debug:  # a library's warning (numpy's overflow) would be a second line: results are checked instead
        import warnings

        warnings.simplefilter("ignore")
    try:
        command = typer.main.get_command(only(app, args[0]) if args else app)
        code = command.main(args, prog_name="attncli", standalone_mode=False)
        _flush_stdout()
    except (BrokenPipeError, ReaderGone):
        _quiet_pipe()
    except typer.Exit as exc:
        code = exc.exit_code
    except BaseException as exc:  # noqa: B036 (tokenizers' PanicException is a BaseException: one line too)
        if debug and not isinstance(exc, (SystemExit, stop.Interrupted)):
            raise
        _fail(*_one_line(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: BaseException) -> tuple[str, int]:
    """The ``error:`` message and exit code for anything that ends a command."""
    if isinstance(exc, AttnError):
        from attncli.cli.flow import in_option_terms

        return in_option_terms(exc), exc.code
    if isinstance(exc, stop.Interrupted):
        return exc.message, exc.code
    if isinstance(exc, (typer.Abort, KeyboardInterrupt)):
        return "interrupted", 130
    if isinstance(exc, typer.exceptions.TyperException):  # usage errors
        return _usage(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (the input needs more than this machine or its limits allow)", 1
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read", 2
    if type(exc).__name__ == "PanicException":  # the Rust side of tokenizers gave up
        return f"the tokenizer failed on this input (it panicked: {_first_line(exc)})", 2
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}", 1
    if not isinstance(exc, Exception):  # SystemExit and the like go on
        raise exc
    return f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _usage(exc: typer.exceptions.TyperException) -> tuple[str, int]:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `attncli` or `attncli model` alone: the help
        sys.stdout.write(exc.format_message() + "\n")
        _flush_stdout()
        sys.exit(0)
    return (exc.format_message().splitlines() or [""])[0], getattr(exc, "exit_code", 2)


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


def entry() -> None:
    """The console script: :func:`main` in a short-lived process (:mod:`attncli.cli.process`)."""
    from attncli.cli.process import short_lived

    short_lived(main)


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


from attncli.cli.survey import survey as _survey  # noqa: E402  (survey.py does not import app: no cycle)

app.command()(_survey)
