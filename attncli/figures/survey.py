"""A survey's figures: one layers × heads heatmap per metric (``survey_<metric>.<fmt>``)
and a summary of the labels (``survey_labels.<fmt>``). Names come from metric names only;
files are written whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attncli.core.survey import INDEX, LABELS, METRICS, NAMES, Summary
from attncli.figures.titles import fit_title
from attncli.files import atomic_open, ensure_dir

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CODES = {
    "previous-token": "PT",
    "next-token": "NT",
    "self": "SF",
    "sink": "SK",
    "separator": "SP",
    "punctuation": "PU",
    "duplicate": "DU",
    "induction": "IN",
    "broad": "BR",
}
SHARES = {
    "self",
    "previous",
    "next",
    "first",
    "separator",
    "punctuation",
    "duplicate",
    "induction",
    "max",
    "entropy_norm",
}


def _figure(L: int, H: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.0 + 0.55 * H), max(3.0, 1.2 + 0.45 * L)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax: Axes, summary: Summary) -> None:
    ax.set_xticks(range(len(summary.heads)), [str(h) for h in summary.heads])
    ax.set_yticks(range(len(summary.layers)), [str(l) for l in summary.layers])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")


def heatmap(summary: Summary, metric: str, path: Path, dpi: int = 150) -> Path:
    """Layers down, heads across; the cell is the metric's mean over the corpus."""
    values = summary.value(metric)
    L, H = values.shape
    fig = _figure(L, H)
    ax = fig.add_subplot()
    bounded = metric in SHARES
    image = ax.imshow(
        np.ma.masked_invalid(values),
        cmap="viridis",
        aspect="auto",
        vmin=0.0 if bounded else None,
        vmax=1.0 if bounded else None,
    )
    _axes(ax, summary)
    if L * H <= 400:
        for l in range(L):
            for h in range(H):
                v = values[l, h]
                if np.isfinite(v):
                    ax.text(
                        h,
                        l,
                        f"{v:.2f}" if bounded else f"{v:.1f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if (v < 0.5 if bounded else v < np.nanmean(values)) else "black",
                        parse_math=False,
                    )
    fitted = fit_title(f"{metric}: {METRICS[metric]}", fig.get_figwidth() - 0.2, 8, dpi)  # wrapped, never cut
    fig.suptitle(fitted.text, fontsize=fitted.size, parse_math=False)
    fig.colorbar(image, ax=ax, shrink=0.9)
    return _save(fig, path, dpi)


BOLD = {"weight": "bold", "parse_math": False}  # label codes are text, never mathtext
GREY_TOP = 2.5  # the labels grid's grey scale: score / threshold 0 … 2 on white … dark grey


def label_colour(strength: float) -> str:
    """A label's colour on its cell's grey: white on the darker greys, dark red on the
    lighter ones (contrast ≥ 3:1 on every grey the grid uses; tested)."""
    return "white" if min(strength, 2.0) / GREY_TOP > 0.52 else "darkred"


def labels_figure(summary: Summary, path: Path, dpi: int = 150) -> Path:
    """Every head's labels as a grid of two-letter codes, and how many heads carry each label."""
    L, H = len(summary.layers), len(summary.heads)
    names = list(LABELS)
    fig = _figure(L, H + 6)
    grid, bars = fig.subplots(1, 2, width_ratios=[max(H, 2), 4])
    strength = np.array([[summary.strength(l, h) for h in range(H)] for l in range(L)])
    grid.imshow(np.minimum(strength, 2.0), cmap="Greys", vmin=0, vmax=GREY_TOP, aspect="auto")
    _axes(grid, summary)
    for l in range(L):
        for h in range(H):
            short = " ".join(CODES.get(name, name[:2]) for name in summary.labels(l, h))
            if short:  # white on the darker greys, dark red on the lighter ones: readable on either
                grid.text(h, l, short, ha="center", va="center", fontsize=7, color=label_colour(strength[l, h]), **BOLD)
    grid.set_title("labels per head (grey: score / threshold)", fontsize=8, parse_math=False)
    counts = [sum(name in summary.labels(l, h) for l in range(L) for h in range(H)) for name in names]
    bars.barh(range(len(names)), counts, color="tab:blue")
    bars.set_yticks(range(len(names)), [f"{n} ({CODES.get(n, n[:2])})" for n in names], fontsize=7)
    bars.set_xlim(0, max(1, *counts))
    bars.xaxis.get_major_locator().set_params(integer=True)
    bars.invert_yaxis()
    bars.set_xlabel("heads")
    return _save(fig, path, dpi)


def _save(fig: Figure, path: Path, dpi: int) -> Path:
    fmt = path.suffix.lstrip(".")
    with atomic_open(path) as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return path


def figures(summary: Summary, out: Path, image_format: str = "png", dpi: int = 150) -> list[Path]:
    """Every metric's heatmap that has data, then the labels summary."""
    folder = ensure_dir(out)
    paths = []
    for metric in NAMES:
        if summary.count[INDEX[metric]] > 0:
            paths.append(heatmap(summary, metric, folder / f"survey_{metric}.{image_format}", dpi))
    paths.append(labels_figure(summary, folder / f"survey_labels.{image_format}", dpi))
    return paths
