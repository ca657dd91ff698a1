"""Machine output: the JSON object of a run and the ``.npz`` of every matrix."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from attncli.files import atomic_open

if TYPE_CHECKING:
    from attncli.core.explain import Explanation
    from attncli.core.result import AttentionResult


def float32_digits(M: np.ndarray) -> np.ndarray:
    """float32 values as the float64 nearest to their 9-significant-digit decimal: the
    same float32 back, without the spurious digits of the float64 widening (JSON stays
    ~40% smaller and faster to write)."""
    x = M.astype(np.float64)
    finite = np.isfinite(x) & (x != 0)
    exp = np.floor(np.log10(np.abs(x, where=finite, out=np.ones_like(x)), where=finite, out=np.zeros_like(x)))
    scale = 10.0 ** (8 - exp)
    return np.where(finite, np.round(x * scale) / scale, x)


def nested(M: np.ndarray) -> list:
    """A matrix as nested lists; masked (±inf) and NaN entries become null."""
    M = np.asarray(M)
    out = (float32_digits(M) if M.dtype == np.float32 else M).tolist()
    if np.all(np.isfinite(M)):
        return out

    def clean(x):
        if isinstance(x, list):
            return [clean(y) for y in x]
        return x if np.isfinite(x) else None

    return clean(out)


def to_json(
    result: AttentionResult, files: list[str], *, stats: Optional[list[dict[str, Any]]] = None, mean_heads: bool = False
) -> dict[str, Any]:
    """The ``--json`` object of one sentence (keys in docs/design.md, "Machine output")."""
    from attncli.core.trace import trace

    d = result.dims
    obj: dict[str, Any] = {"text": result.text, "tokens": result.tokens.tokens}
    if result.is_model:
        obj["ids"] = result.tokens.ids
    obj["n"] = result.n
    if result.checkpoint is not None:
        obj["model_type"] = result.checkpoint.model_type
    obj["dims"] = {"r": d.r, "q": d.q, "v": d.v, "heads": d.heads}
    if result.is_model:
        obj["dims"]["layers"] = d.layers
    if d.kv_heads is not None and d.kv_heads != d.heads:
        obj["dims"]["kv_heads"] = d.kv_heads
    obj["trace"] = [s.as_dict() for s in trace(result)]
    if result.is_model:
        obj.update(_layers_json(result))
    else:
        obj["heads"] = [
            {"head": h, "A": nested(result.A[0, k]), "A_prime": nested(result.A_prime[0, k])}
            for k, h in enumerate(result.heads)
        ]
    obj["O"] = matrix(result.O)
    obj["files"] = list(files)
    if not result.is_model and any(i is not None for i in result.tokens.ids):
        obj["ids"] = result.tokens.ids  # after files: where a run has always put them
    if stats is not None:
        obj["stats"] = stats
    if mean_heads:
        means = result.head_means()
        if result.is_model:
            obj["mean_heads"] = [{"layer": l, "A_prime": means[a].tolist()} for a, l in enumerate(result.layers)]
        else:
            obj["mean_heads"] = {"A_prime": means[0].tolist()}
    if result.rollout is not None:
        obj["rollout"] = {"A_prime": result.rollout.tolist()}
    return obj


def _layers_json(result: AttentionResult) -> dict[str, Any]:
    """A model's selected layers and heads: which pairs (``heads``) and the matrices, once
    (``layers``)."""
    d = result.dims
    grouped = d.kv_heads is not None and d.kv_heads != d.heads

    def head(a: int, b: int, h: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"head": h}
        if grouped:
            entry["group"] = d.group(h)
        entry["A"], entry["A_prime"] = matrix(result.A[a, b]), matrix(result.A_prime[a, b])
        return entry

    layers = [
        {"layer": l, "heads": [head(a, b, h) for b, h in enumerate(result.heads)]} for a, l in enumerate(result.layers)
    ]
    pairs = [{"layer": l, "head": h, **({"group": d.group(h)} if grouped else {})} for l, h in result.pairs()]
    return {"heads": pairs, "layers": layers}


_INTEGRAL = re.compile(r"(?<![\w.+-])(-?\d+)(?=[,\]])")  # "1" → "1.0", as json writes floats


def float32_json(M: np.ndarray) -> str:
    """A float32 array as JSON nested lists, one ``%`` operation per row: 9 significant
    digits (the same float32 back, like :func:`float32_digits`), twice as fast as json's
    float repr. ±inf and NaN become null."""
    M = np.asarray(M)
    if M.size == 0 or M.ndim == 0:
        return json.dumps(nested(M), allow_nan=False)
    cols = M.shape[-1]
    row = "[" + ", ".join(["%.9g"] * cols) + "]"
    out = [row % tuple(r) for r in M.reshape(-1, cols).astype(np.float64).tolist()]
    if not np.isfinite(M).all():
        out = [r.replace("-inf", "null").replace("inf", "null").replace("nan", "null") for r in out]
    if np.any(M == np.trunc(M)):
        out = [_INTEGRAL.sub(r"\1.0", r) for r in out]
    for size in reversed(M.shape[:-1]):
        out = ["[" + ", ".join(out[i : i + size]) + "]" for i in range(0, len(out), size)]
    return out[0]


def dumps(obj: dict) -> str:
    """The JSON text of ``obj``; float32 arrays in it are written by :func:`float32_json`
    (the model command's matrices), everything else by :mod:`json`."""
    raws: list[str] = []
    tag = os.urandom(6).hex()  # no string in obj can be this placeholder by chance

    def swap(x):
        if isinstance(x, dict):
            return {k: swap(v) for k, v in x.items()}
        if isinstance(x, list):
            return [swap(v) for v in x]
        if isinstance(x, np.ndarray) and x.dtype == np.float32:
            raws.append(float32_json(x))
            return f"{tag}{len(raws) - 1}"
        return nested(x) if isinstance(x, np.ndarray) else x

    text = json.dumps(swap(obj), ensure_ascii=False, allow_nan=False)
    return re.sub(f'"{tag}(\\d+)"', lambda m: raws[int(m.group(1))], text) if raws else text


def matrix(M: np.ndarray):
    """A matrix for a JSON object: float32 stays an array (written fast by :func:`dumps`),
    anything else becomes nested lists."""
    return M if M.dtype == np.float32 else nested(M)


def arrays(result: AttentionResult, *, mean_heads: bool = False) -> dict[str, np.ndarray]:
    """Every matrix of a result, heads first (names in docs/design.md). A run's stacks are
    H×n×n (one layer); a model's are L×H×n×n with ``layers`` and ``heads`` saying which."""
    out: dict[str, np.ndarray] = {"tokens": np.array(result.tokens.tokens, dtype=str)}
    if result.is_model:
        out["ids"] = np.array(result.tokens.ids)
    out["I"] = result.I
    out.update(_present(result.weights, ("Wq", "Wk", "Wv")))
    out.update(_present(vars(result), ("Q", "K", "V")))
    out.update(_model_arrays(result) if result.is_model else _run_arrays(result))
    if result.P is not None and result.E is not None:
        out["E"], out["P"] = result.E, result.P
    out.update(_present(result.weights, ("Wo",)))
    if mean_heads:
        means = result.head_means()
        out["mean_heads"] = means if result.is_model else means[0]
    if result.rollout is not None:
        out["rollout"] = result.rollout
    return out


def _present(source: dict[str, Any], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: source[k] for k in names if source.get(k) is not None}


def _run_arrays(result: AttentionResult) -> dict[str, np.ndarray]:
    out = {"A": result.A[0], "A_prime": result.A_prime[0]}
    if result.O_heads is not None:
        out["O_heads"] = result.O_heads
    out["O"] = result.O
    return out


def _model_arrays(result: AttentionResult) -> dict[str, np.ndarray]:
    out = {"O": result.O, "A": result.A, "A_prime": result.A_prime}
    out["layers"], out["heads"] = np.array(result.layers), np.array(result.heads)
    d = result.dims
    if d.kv_heads is not None and d.kv_heads != d.heads:
        out["kv_heads"] = np.array(d.kv_heads)
        out["groups"] = np.array([d.group(h) for h in result.heads])
    return out


def save_npz(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Like ``numpy.savez`` but byte-for-byte reproducible (fixed zip timestamps) and
    atomic; loadable with ``numpy.load(path, allow_pickle=False)``."""
    import zipfile  # here: only --npz needs it

    with atomic_open(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for name, array in data.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def npz_path(path: str | Path, sentence: Optional[int]) -> Path:
    """``FILE`` for one sentence; ``FILE`` with ``_s{k}`` before the extension in a batch."""
    path = Path(path)
    if sentence is None:
        return path
    suffix = path.suffix or ".npz"
    return path.with_name(f"{path.stem if path.suffix else path.name}_s{sentence}{suffix}")


def explain_json(e: Explanation) -> dict[str, Any]:
    return {
        "text": e.result.text,
        "tokens": e.result.tokens.tokens,
        "query": e.query,
        "head": e.head,
        "q_j": e.q_j.tolist(),
        "k": [x.tolist() for x in e.k],
        "v": [x.tolist() for x in e.v],
        "alpha": nested(e.alpha),
        "alpha_prime": e.alpha_prime.tolist(),
        "b_j": e.b_j.tolist(),
        "O_column": e.result.O_heads[e.head - 1][:, e.query - 1].tolist(),  # type: ignore[index]
        "max_difference": e.max_difference,
    }
