"""A survey's views: the ranked Rich table, one JSON object, a CSV file. Each takes the
:class:`attncli.core.survey.Summary` and the source's :class:`Info`, nothing else."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from attncli.core.survey import INDEX, LABELS, METRICS, NAMES, Summary
from attncli.core.survey_source import Info

if TYPE_CHECKING:
    from rich.table import Table

SHOWN = ("previous", "first", "separator", "duplicate", "induction", "entropy_norm", "distance")
HEADERS = {
    "previous": "prev",
    "first": "first",
    "separator": "sep",
    "self": "self",
    "duplicate": "dup",
    "induction": "ind",
    "entropy_norm": "H/lnK",
    "distance": "dist",
}


def _number(x: float) -> Optional[float]:
    return None if not math.isfinite(x) else float(x)


def _cell(metric: str, mean: float) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.1f}" if metric == "distance" else f"{mean:.2f}"


def table(summary: Summary, info: Info, top: int = 20) -> Table:
    """The heads ranked by how clearly they do something (the largest score/threshold)."""
    from rich.table import Table
    from rich.text import Text

    pairs = summary.ranked()
    shown = pairs if top <= 0 else pairs[:top]
    t = summary.tallies
    title = (
        f"{info.name}: {t.get('sentences', 0)} sentences, {t.get('windows', 0)} windows,"
        f" {t.get('induction_sequences', 0)} induction sequences"
        f"{' (partial: interrupted)' if summary.partial else ''}; heads ranked, {len(shown)} of {len(pairs)}"
    )
    table = Table(
        title=Text(title), title_justify="left", header_style="bold", caption=Text(_caption()), caption_justify="left"
    )
    table.add_column("layer", justify="right")
    table.add_column("head", justify="right")
    table.add_column("labels", min_width=9)
    for metric in SHOWN:
        table.add_column(HEADERS[metric], justify="right")
    for l, h in shown:
        cells = [_cell(m, summary.mean[l, h, INDEX[m]]) for m in SHOWN]
        labels = ", ".join(summary.labels(l, h)) or "—"
        table.add_row(str(summary.layers[l]), str(summary.heads[h]), Text(labels), *cells)
    return table


def _caption() -> str:
    rules = ", ".join(f"{name}: {metric} ≥ {t}" for name, (metric, t) in LABELS.items())
    return (
        "means over queries (spreads and every metric: --json, --csv); layers and heads counted from 1;"
        " prev, first, sep: shares of attention; dup, ind: duplicate-token and induction scores;"
        f" H/lnK: normalised entropy; dist: mean distance in tokens. Labels: {rules}."
    )


def to_json(summary: Summary, info: Info, files: list[str]) -> dict[str, Any]:
    """One object: the source, the tallies, the metric definitions and thresholds, and per
    layer and head its labels and every metric's mean, spread and count."""
    heads = []
    for l, layer in enumerate(summary.layers):
        for h, head in enumerate(summary.heads):
            metrics = {
                m: {
                    "mean": _number(summary.mean[l, h, k]),
                    "std": _number(summary.std[l, h, k]),
                    "count": int(summary.count[k]),
                }
                for k, m in enumerate(NAMES)
            }
            heads.append({"layer": layer, "head": head, "labels": summary.labels(l, h), "metrics": metrics})
    return {
        "model": info.name,
        "model_type": info.model_type,
        "layers": len(summary.layers),
        "heads": len(summary.heads),
        "causal": info.causal,
        "window": info.window,
        "partial": summary.partial,
        **{k: int(v) for k, v in sorted(summary.tallies.items())},
        "metrics": METRICS,
        "thresholds": {name: {"metric": m, "min": t} for name, (m, t) in LABELS.items()},
        "ranked": [[summary.layers[l], summary.heads[h]] for l, h in summary.ranked()],
        "results": heads,
        "files": files,
    }


def csv_text(summary: Summary) -> str:
    """One row per layer and head: labels, then mean, std and count of every metric."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["layer", "head", "labels"] + [f"{m}_{s}" for m in NAMES for s in ("mean", "std", "count")])
    for l, layer in enumerate(summary.layers):
        for h, head in enumerate(summary.heads):
            row: list[Any] = [layer, head, ";".join(summary.labels(l, h))]
            for k in range(len(NAMES)):
                mean, std = summary.mean[l, h, k], summary.std[l, h, k]
                row += [
                    repr(float(mean)) if math.isfinite(mean) else "",
                    repr(float(std)) if math.isfinite(std) else "",
                    int(summary.count[k]),
                ]
            w.writerow(row)
    return out.getvalue()


def write_csv(path: Path, summary: Summary) -> Path:
    from attncli.files import atomic_open

    with atomic_open(path, "w") as fh:
        fh.write(csv_text(summary))
    return path
