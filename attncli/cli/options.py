"""The options the commands share, declared once (their names are part of the product,
see docs/design.md). Typer reads them from the commands' signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

TextArg = Annotated[
    Optional[str],
    typer.Argument(
        metavar="TEXT",
        help="Sentence, or - for stdin (one sentence per non-empty line; several lines make a batch). "
        "Left out: stdin when it is not a terminal.",
        show_default=False,
    ),
]
TokenizerOpt = Annotated[
    Optional[str],
    typer.Option(
        "-t",
        "--tokenizer",
        metavar="SPEC",
        help="whitespace (words and punctuation), bert, char, or a tokenizer.json / a folder holding one "
        "[default: whitespace, or the tokenizer.json of a model folder given to --embeddings].",
        show_default=False,
    ),
]
SpecialOpt = Annotated[
    bool, typer.Option("--special/--no-special", help="Keep the special tokens ([CLS], [SEP] …) a tokenizer.json adds.")
]
EmbeddingsOpt = Annotated[
    str,
    typer.Option(
        "-e",
        "--embeddings",
        metavar="SPEC",
        help="random, or word vectors: GloVe/word2vec text (.txt/.vec), word2vec .bin, .npy + vocab.txt, "
        ".npz (vocab, vectors), .safetensors or a model folder.",
    ),
]
OovOpt = Annotated[
    str, typer.Option("--oov", metavar="random|zero|error", help="What a token missing from loaded vectors gets.")
]
DimOpt = Annotated[int, typer.Option("-r", "--dim", metavar="R", help="Embedding size r of random vectors.")]
HeadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "-H", "--heads", metavar="H", help="Number of heads [default: 1, or what --weights holds].", show_default=False
    ),
]
QDimOpt = Annotated[
    Optional[int],
    typer.Option("--q-dim", metavar="Q", help="Per-head query/key size q [default: r/H].", show_default=False),
]
VDimOpt = Annotated[
    Optional[int],
    typer.Option("--v-dim", metavar="V", help="Per-head value size v [default: r/H].", show_default=False),
]
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--weights",
        metavar="FILE.npz",
        help="Your own Wq, Wk (H×q×r or q×r), Wv (H×v×r or v×r), optional Wo.",
        show_default=False,
    ),
]
NormOpt = Annotated[str, typer.Option("--norm", metavar="softmax|relu|sparsemax", help="Column normalisation of A.")]
TempOpt = Annotated[float, typer.Option("--temperature", metavar="T", help="Softmax temperature: A' = softmax(A/T).")]
ScaleOpt = Annotated[
    bool, typer.Option("--scale/--no-scale", help="Divide A by √q (--no-scale: the notes' plain dot product).")
]
CausalOpt = Annotated[bool, typer.Option("--causal", help="Mask future keys: query j sees keys i ≤ j.")]
PositionsOpt = Annotated[
    str, typer.Option("--positions", metavar="none|sinusoidal", help="Add positional encodings to I.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seeds every random vector and weight.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", metavar="N", help="Refuse longer input.")]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="Encoding of stdin.")]
OutOpt = Annotated[Path, typer.Option("-o", "--out", metavar="DIR", help="Folder for figures (created if missing).")]
PlotOpt = Annotated[bool, typer.Option("--plot/--no-plot", help="Write heatmaps.")]
FormatOpt = Annotated[str, typer.Option("--image-format", metavar="png|svg|pdf", help="Figure format.")]
DpiOpt = Annotated[int, typer.Option("--dpi", help="Figure resolution (dots per inch).")]
CmapOpt = Annotated[
    Optional[str],
    typer.Option(
        "--cmap",
        metavar="NAME",
        help="Matplotlib colour map [default: viridis, or RdBu_r for signed values].",
        show_default=False,
    ),
]
ThemeOpt = Annotated[str, typer.Option("--theme", metavar="light|dark", help="Figure colours.")]
TransparentOpt = Annotated[bool, typer.Option("--transparent", help="Transparent figure background.")]
AnnotateOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--annotate/--no-annotate",
        help="Numbers in the cells [default: when they are big enough to read].",
        show_default=False,
    ),
]
GridOpt = Annotated[bool, typer.Option("--grid/--no-grid", help="Also draw all heads in one figure, heads.<format>.")]
TransposeOpt = Annotated[
    bool, typer.Option("--transpose", help="Heatmaps only: rows = queries (the [query, key] layout of most libraries).")
]
FigsizeOpt = Annotated[
    Optional[str], typer.Option("--figsize", metavar="W,H", help="Figure size in inches.", show_default=False)
]
TitleOpt = Annotated[Optional[str], typer.Option("--title", help="Figure title.", show_default=False)]
FontSizeOpt = Annotated[
    Optional[float], typer.Option("--font-size", help="Base font size in points.", show_default=False)
]
VminOpt = Annotated[Optional[float], typer.Option("--vmin", help="Lower colour limit.", show_default=False)]
VmaxOpt = Annotated[Optional[float], typer.Option("--vmax", help="Upper colour limit.", show_default=False)]
SharedOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--shared-scale/--per-head-scale",
        help="One colour scale for every head [default: shared for softmax and sparsemax].",
        show_default=False,
    ),
]
MatrixOpt = Annotated[str, typer.Option("--matrix", metavar="A|A_prime", help="Draw the scores A or the weights A'.")]
MeanOpt = Annotated[bool, typer.Option("--mean-heads", help="Also draw (and report) the mean of A' over heads.")]
ValuesOpt = Annotated[bool, typer.Option("--values", help="Also print every matrix's numbers.")]
PrecisionOpt = Annotated[int, typer.Option("--precision", help="Decimals shown in tables.")]
PreviewOpt = Annotated[bool, typer.Option("--preview", help="Draw the heatmaps in the terminal too.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON object per sentence on stdout (JSON Lines for a batch), nothing else.")
]
NpzOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--npz", metavar="FILE", help="Save every matrix (FILE_s{k}.npz per line in a batch).", show_default=False
    ),
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No tables; stdout carries only the paths written.")]
FailFastOpt = Annotated[bool, typer.Option("--fail-fast", help="In a batch, stop at the first bad line.")]
Float64Opt = Annotated[
    bool,
    typer.Option(
        "--float64",
        help="Compute in float64 (for checking); float32 by default, as shown numbers need no more.",
    ),
]
ViewOpt = Annotated[
    str,
    typer.Option(
        "--view",
        metavar="heatmap|lines",
        help="Figure kind: heatmaps, or lines from each query j to the keys i it attends to (opacity = A'[i, j]).",
    ),
]
HtmlOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--html",
        metavar="FILE",
        help="Also write one self-contained, offline HTML page to explore the attention"
        " (head, model and heatmap views; a batch gets one page with a sentence picker).",
        show_default=False,
    ),
]
QueryOpt = Annotated[
    Optional[int],
    typer.Option(
        "--query",
        "-j",
        metavar="J",
        help="Line view: highlight query token j's lines (counted from 1).",
        show_default=False,
    ),
]
