"""Machine output: the JSON object of a run and the ``.npz`` of every matrix."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from attncli.export_stream import nested
from attncli.files import atomic_open
from attncli.labels import json_safe

if TYPE_CHECKING:
    from attncli.core.explain import Explanation
    from attncli.core.result import AttentionResult


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
    if any(result.tokens.generated):
        obj["generated"] = result.tokens.generated  # which tokens the model added (model --generate)
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
            {"head": h, "A": matrix(result.scores[0, k]), "A_prime": matrix(result.A_prime[0, k])}
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
            obj["mean_heads"] = [{"layer": l, "A_prime": matrix(means[a])} for a, l in enumerate(result.layers)]
        else:
            obj["mean_heads"] = {"A_prime": matrix(means[0])}
    if result.rollout is not None:
        obj["rollout"] = {"A_prime": matrix(result.rollout)}
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
        entry["A"], entry["A_prime"] = matrix(result.scores[a, b]), matrix(result.A_prime[a, b])
        return entry

    layers = [
        {"layer": l, "heads": [head(a, b, h) for b, h in enumerate(result.heads)]} for a, l in enumerate(result.layers)
    ]
    pairs = [{"layer": l, "head": h, **({"group": d.group(h)} if grouped else {})} for l, h in result.pairs()]
    return {"heads": pairs, "layers": layers}


def float32_json(M: np.ndarray) -> str:
    """A float32 array as JSON nested lists, one ``%`` operation per row: 9 significant
    digits (the same float32 back, like :func:`float32_digits`), twice as fast as json's
    float repr. ±inf and NaN become null."""
    M = np.asarray(M)
    if M.size == 0 or M.ndim == 0:
        return json.dumps(nested(M), allow_nan=False)
    from attncli.export_stream import write_matrix

    out: list[str] = []
    write_matrix(M, out.append)
    return "".join(out)


def dumps(obj: dict[str, Any]) -> str:
    """The JSON text of ``obj``; numpy float arrays in it are written a row at a time by
    :mod:`attncli.export_stream` (float32 as ``%.9g``), everything else by :mod:`json`."""
    out: list[str] = []
    write_json(obj, out.append)
    return json_safe("".join(out))


def write_json(obj: dict[str, Any], write: Callable[[str], Any]) -> None:
    """:func:`dumps` without the whole text: pieces go to ``write`` as they are made."""
    from attncli.export_stream import write_json as stream

    stream(obj, write)


def matrix(M: np.ndarray) -> np.ndarray | list[Any]:
    """A matrix for a JSON object: a float array stays an array (streamed by
    :func:`write_json`), anything else becomes nested lists."""
    from attncli.export_stream import streamable

    return M if streamable(M) else nested(M)


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
    out = {"A": result.scores[0], "A_prime": result.A_prime[0]}
    if result.O_heads is not None:
        out["O_heads"] = result.O_heads
    out["O"] = result.O
    return out


def _model_arrays(result: AttentionResult) -> dict[str, np.ndarray]:
    out = {"O": result.O, "A": result.scores, "A_prime": result.A_prime}
    out["layers"], out["heads"] = np.array(result.layers), np.array(result.heads)
    d = result.dims
    if d.kv_heads is not None and d.kv_heads != d.heads:
        out["kv_heads"] = np.array(d.kv_heads)
        out["groups"] = np.array([d.group(h) for h in result.heads])
    return out


NPZ_BLOCK = 8 << 20  # bytes per write: the CRC and the copy into the file read it while it is in cache


def save_npz(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Like ``numpy.savez`` but byte-for-byte reproducible (fixed zip timestamps) and
    atomic; loadable with ``numpy.load(path, allow_pickle=False)``. Each member is written
    straight into the zip, a C-contiguous array as its own memory in blocks of
    :data:`NPZ_BLOCK` bytes (no copy, no in-memory buffer); zip64 only for members that
    need it (over 2 GiB), so small files keep their bytes."""
    import zipfile  # here: only --npz needs it

    with atomic_open(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for name, array in data.items():
            array = np.asarray(array)
            header = npy_header(array)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.file_size = len(header) + array.nbytes  # decides zip64 as writestr did from the buffer's length
            with zf.open(info, "w") as member:
                if array.flags.c_contiguous and not array.dtype.hasobject:
                    member.write(header)  # what write_array writes, then the data as it lies
                    data_bytes = array.reshape(-1).view(np.uint8).data
                    for lo in range(0, len(data_bytes), NPZ_BLOCK):
                        member.write(data_bytes[lo : lo + NPZ_BLOCK])
                else:
                    np.lib.format.write_array(member, array, allow_pickle=False)


def npy_header(array: np.ndarray) -> bytes:
    """The .npy header :func:`numpy.lib.format.write_array` writes for ``array``."""
    header, fields = io.BytesIO(), np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(header, fields)
    except ValueError:  # a header too long for format 1.0: write_array uses 2.0
        np.lib.format.write_array_header_2_0(header, fields)
    return header.getvalue()


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
        "O_column": e.result.O_heads[e.index][:, e.query - 1].tolist(),  # type: ignore[index]
        "max_difference": e.max_difference,
    }
