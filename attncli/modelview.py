"""What `attncli model` shows: the selection of layers and heads, its JSON, npz,
trace table and figures. The forward pass itself is in :mod:`attncli.models`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from attncli.errors import AttnError
from attncli.export import matrix
from attncli.labels import count
from attncli.core.models.forward import ModelResult, hide, rollout


def model_name(result: ModelResult) -> str:
    """The checkpoint's own name (config's _name_or_path), else its folder's."""
    name = str(result.config.get("_name_or_path") or "").rstrip("/")
    return name.rsplit("/", 1)[-1] if name else Path(result.folder).name


def parse_indices(spec: Optional[str], upper: int, option: str) -> list[int]:
    """``"1,3-5"`` → [1, 3, 4, 5]; counted from 1; None → all of 1…upper."""
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


@dataclass
class View:
    """A model result seen through the user's choices."""

    result: ModelResult
    layers: list[int]  # 1-based
    heads: list[int]  # 1-based
    hide_special: bool = False
    want_rollout: bool = False
    want_mean: bool = False
    keep: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        special = np.array(self.result.tokens.special, dtype=bool)
        self.keep = ~special if self.hide_special and (~special).any() else np.ones(len(special), dtype=bool)

    @property
    def tokens(self) -> list[str]:
        return [t for t, k in zip(self.result.tokens.tokens, self.keep) if k]

    def shown(self, M: np.ndarray, weights: bool = True) -> np.ndarray:
        """A matrix as figures show it: special tokens dropped (and columns renormalised)."""
        return hide(M, self.keep, renormalise=weights) if not self.keep.all() else M

    def selected(self, stack: np.ndarray) -> np.ndarray:
        """The chosen layers × heads of an L×H×n×n stack."""
        return stack[np.ix_(np.array(self.layers) - 1, np.array(self.heads) - 1)]

    def A_prime(self, layer: int, head: int) -> np.ndarray:
        return self.result.A_prime[layer - 1, head - 1]

    def A(self, layer: int, head: int) -> np.ndarray:
        return self.result.A[layer - 1, head - 1]

    def mean(self, layer: int) -> np.ndarray:
        return self.result.A_prime[layer - 1].mean(axis=0)

    def rollout(self) -> np.ndarray:
        return rollout(self.result.A_prime)

    def note(self) -> str:
        return ", special tokens hidden, columns renormalised" if not self.keep.all() else ""


def to_json(view: View, files: list[str]) -> dict:
    r = view.result
    d = r.dims
    A, A_prime = matrix(view.selected(r.A)), matrix(view.selected(r.A_prime))
    layers = [
        {
            "layer": l,
            "heads": [{"head": h, "A": A[i][j], "A_prime": A_prime[i][j]} for j, h in enumerate(view.heads)],
        }
        for i, l in enumerate(view.layers)
    ]
    obj = {
        "text": r.text,
        "tokens": r.tokens.tokens,
        "ids": r.tokens.ids,
        "n": r.n,
        "model_type": r.model_type,
        "dims": {"r": d["r"], "q": d["q"], "v": d["v"], "heads": d["heads"], "layers": d["layers"]},
        "trace": trace(view),
        "heads": [{"layer": entry["layer"], "head": h["head"]} for entry in layers for h in entry["heads"]],
        "layers": layers,  # the matrices, once: heads lists which (layer, head) pairs they are
        "O": matrix(r.O),
        "files": files,
    }
    if view.want_mean:
        obj["mean_heads"] = [{"layer": l, "A_prime": view.mean(l).tolist()} for l in view.layers]
    if view.want_rollout:
        obj["rollout"] = {"A_prime": view.rollout().tolist()}
    return obj


def arrays(view: View) -> dict[str, np.ndarray]:
    r = view.result
    out = {
        "tokens": np.array(r.tokens.tokens, dtype=str),
        "ids": np.array(r.tokens.ids),
        "I": r.I,
        "O": r.O,
        "A": view.selected(r.A),
        "A_prime": view.selected(r.A_prime),
        "layers": np.array(view.layers),
        "heads": np.array(view.heads),
    }
    if view.want_mean:
        out["mean_heads"] = np.stack([view.mean(l) for l in view.layers])
    if view.want_rollout:
        out["rollout"] = view.rollout()
    return out


def trace(view: View) -> list[dict]:
    d = view.result.dims
    r, q, v, n, H = d["r"], d["q"], d["v"], d["n"], d["heads"]
    rows = [
        ("I", (r, n), "r×n"),
        ("Wq", (q, r), "q×r"),
        ("Wk", (q, r), "q×r"),
        ("Wv", (v, r), "v×r"),
        ("Q", (q, n), "q×n"),
        ("K", (q, n), "q×n"),
        ("V", (v, n), "v×n"),
        ("A", (n, n), "n×n"),
        ("A_prime", (n, n), "n×n"),
        ("O_head", (v, n), "v×n"),
        ("Wo", (r, H * v), "r×H·v"),
        ("O", (r, n), "r×n"),
    ]
    return [{"name": name, "shape": list(shape), "symbolic": sym} for name, shape, sym in rows]


def figures(view: View, out: Path, style, sentence: Optional[int] = None) -> list[Path]:
    """layer_{l}_head_{h} per selected head, model.png (layers × heads), and the
    rollout and per-layer means when asked."""
    from dataclasses import replace

    from attncli.files import ensure_dir, figure_name
    from attncli.figures.heatmap import Panel, grid_figure, render

    out = ensure_dir(out)
    note = view.note()
    tokens = view.tokens
    panels = [
        Panel(view.shown(view.A_prime(l, h)), f"layer {l}, head {h}: A′{note}", f"layer_{l}_head_{h}", f"head {h}")
        for l in view.layers
        for h in view.heads
    ]
    single = replace(style, grid=False)
    kw = dict(bounded=True, cbar_label="A′[i, j]", sentence=sentence)
    files = render(panels, tokens, out, single, **kw)
    if len(panels) > 1 and style.grid:
        path = out / figure_name("model", style.image_format, sentence)
        mats = [p.matrix.T if style.transpose else p.matrix for p in panels]
        titles = [f"head {h}" if k == 0 else "" for k in range(len(view.layers)) for h in view.heads]
        model = model_name(view.result)
        shape = f"{count(len(view.layers), 'layer')} × {count(len(view.heads), 'head')}"
        grid_figure(
            mats,
            titles,
            tokens,
            tokens,
            style,
            True,
            "A′[i, j]",
            style.title or f"{model}: attention of {shape}{note}",
            path,
            ncols=len(view.heads),
            row_names=[f"layer {l}" for l in view.layers],
        )
        files.append(path)
    if view.want_mean:
        means = [
            Panel(
                view.shown(view.mean(l)),
                f"layer {l}: mean of {count(view.result.dims['heads'], 'head')}{note}",
                f"layer_{l}_mean",
            )
            for l in view.layers
        ]
        files += render(means, tokens, out, single, **kw)
    if view.want_rollout:
        layers = view.result.A_prime.shape[0]
        panel = Panel(view.shown(view.rollout()), f"attention rollout over {layers} layers{note}", "rollout")
        files += render([panel], tokens, out, single, **{**kw, "cbar_label": "rollout R[i, j]"})
    return files


def print_model(console, view: View, precision: int = 3) -> None:
    from rich.table import Table
    from rich.text import Text

    from attncli.labels import token_labels

    r = view.result
    d = r.dims
    console.print(
        Text(
            f"{model_name(r)} ({r.model_type}): {count(d['layers'], 'layer')} × {count(d['heads'], 'head')}, "
            f"r = {d['r']}, q = v = {d['q']}, n = {d['n']}",
            style="bold",
        )
    )
    console.print(Text(f"tokens ({r.n}): ") + Text(" · ".join(token_labels(r.tokens.tokens))))
    table = Table(title=Text("dimension trace (every layer, every head)"), title_justify="left", header_style="bold")
    for col in ("matrix", "=", "shape", "size"):
        table.add_column(col)
    formulas = {
        "I": "embeddings of the tokens",
        "Wq": "per head",
        "Wk": "per head",
        "Wv": "per head",
        "Q": "W^q I",
        "K": "W^k I",
        "V": "W^v I",
        "A": "Kᵀ Q / √q" + (", causal" if r.causal else ""),
        "A_prime": "softmax(A), column by column",
        "O_head": "V A'",
        "Wo": "attention output dense",
        "O": "after the last block",
    }
    for step in trace(view):
        name = {"A_prime": "A'", "O_head": "O_h", "Wq": "W^q", "Wk": "W^k", "Wv": "W^v", "Wo": "W^o"}.get(
            step["name"], step["name"]
        )
        table.add_row(Text(name), Text(formulas[step["name"]]), step["symbolic"], "×".join(map(str, step["shape"])))
    console.print(table)
    n = d["n"]
    console.print(Text(f"r×n → q×n → n×n → v×n  =  {d['r']}×{n} → {d['q']}×{n} → {n}×{n} → {d['v']}×{n}", style="bold"))
    stats = Table(
        title=Text(f"selected: layers {_ranges(view.layers)}, heads {_ranges(view.heads)}"),
        title_justify="left",
        header_style="bold",
    )
    for col in ("layer", "head", "entropy mean", "max weight", "→ self", "→ previous", "→ first"):
        stats.add_column(col, justify="right")
    from attncli.core.stats import one_head

    for l in view.layers:
        for h in view.heads:
            s = one_head(view.A_prime(l, h).astype(np.float64))
            stats.add_row(
                str(l),
                str(h),
                f"{s['entropy_mean']:.3f}",
                f"{s['max_weight']:.3f}",
                f"{s['self']:.1%}",
                f"{s['previous']:.1%}",
                f"{s['first']:.1%}",
            )
    console.print(stats)


def _ranges(ks: list[int]) -> str:
    if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 2:
        return f"{ks[0]}–{ks[-1]}"
    return ", ".join(map(str, ks))
