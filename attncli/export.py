"""Machine output: the JSON object of a run and the ``.npz`` of every matrix."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from attncli.files import atomic_open
from attncli.labels import UNSAFE

if TYPE_CHECKING:  # the model command uses this module without the random-vectors pipeline
    from attncli.core.pipeline import Result


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


def to_json(result: Result, files: list[str], extra: Optional[dict] = None) -> dict:
    """The ``--json`` object of one sentence (keys per DESIGN.md, "Machine output")."""
    from attncli.core.trace import trace

    d = result.dims
    obj = {
        "text": result.text,
        "tokens": result.tokens.tokens,
        "n": result.n,
        "dims": {"r": d["r"], "q": d["q"], "v": d["v"], "heads": d["heads"]},
        "trace": [s.as_dict() for s in trace(result)],
        "heads": [
            {"head": h + 1, "A": nested(head.A), "A_prime": nested(head.A_prime)} for h, head in enumerate(result.heads)
        ],
        "O": nested(result.O),
        "files": list(files),
    }
    if any(i is not None for i in result.tokens.ids):
        obj["ids"] = result.tokens.ids
    if extra:
        obj.update(extra)
    return obj


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
    if UNSAFE.search(text):  # C1 controls, bidi overrides, lone surrogates: escaped, same JSON data
        text = UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return re.sub(f'"{tag}(\\d+)"', lambda m: raws[int(m.group(1))], text) if raws else text


def matrix(M: np.ndarray):
    """A matrix for a JSON object: float32 stays an array (written fast by :func:`dumps`),
    anything else becomes nested lists."""
    return M if M.dtype == np.float32 else nested(M)


def arrays(result: Result) -> dict[str, np.ndarray]:
    """Every matrix of a run, heads first (names per DESIGN.md)."""
    W, heads = result.weights, result.heads
    out = {
        "tokens": np.array(result.tokens.tokens, dtype=str),
        "I": result.I,
        "Wq": W["Wq"],
        "Wk": W["Wk"],
        "Wv": W["Wv"],
        "Q": np.stack([h.Q for h in heads]),
        "K": np.stack([h.K for h in heads]),
        "V": np.stack([h.V for h in heads]),
        "A": np.stack([h.A for h in heads]),
        "A_prime": np.stack([h.A_prime for h in heads]),
        "O_heads": np.stack([h.O for h in heads]),
        "O": result.O,
    }
    if result.P is not None:
        out["E"], out["P"] = result.E, result.P
    if W.get("Wo") is not None:
        out["Wo"] = W["Wo"]
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
