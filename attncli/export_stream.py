"""The ``--json`` text written as it is made: matrices row by row, never whole.

The plain version is ``json.dumps`` of the object with every matrix as nested lists of
Python floats (:func:`attncli.export.nested`): ~40 bytes of Python objects per number and
the whole document as one string. Here the object is dumped by :mod:`json` with each
matrix replaced by a placeholder, and the text is written piece by piece with each matrix
written in its place a block of rows at a time, one ``%`` operation per row:

- float32 as ``%.9g`` (the same float32 back, like :func:`attncli.export.float32_digits`),
- float64 as ``%r`` (Python's float repr: what :mod:`json` writes),

±inf and NaN as ``null``, whole numbers with ``.0`` as :mod:`json` writes floats. The bytes
equal the plain version's (tested); memory stays at one block of rows
(bench/bench_long.py measures both against a plain row loop).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, cast

import numpy as np

Write = Callable[[str], Any]

ROWS_PER_BLOCK = 1 << 16  # numbers per block of rows: ~1.5 MiB of Python floats at a time


def float32_digits(M: np.ndarray) -> np.ndarray:
    """float32 values as the float64 nearest to their 9-significant-digit decimal: the
    same float32 back, without the spurious digits of the float64 widening (JSON stays
    ~40% smaller and faster to write)."""
    x = M.astype(np.float64)
    finite = np.isfinite(x) & (x != 0)
    exp = np.floor(np.log10(np.abs(x, where=finite, out=np.ones_like(x)), where=finite, out=np.zeros_like(x)))
    scale = 10.0 ** (8 - exp)
    return np.where(finite, np.round(x * scale) / scale, x)


def nested(M: np.ndarray) -> list[Any]:
    """A matrix as nested lists; masked (±inf) and NaN entries become null."""
    M = np.asarray(M)
    out = (float32_digits(M) if M.dtype == np.float32 else M).tolist()
    if np.all(np.isfinite(M)):
        return out

    def clean(x: Any) -> Any:
        if isinstance(x, list):
            return [clean(y) for y in x]
        return x if np.isfinite(x) else None

    return clean(out)


def streamable(x: Any) -> bool:
    """A matrix this module writes itself: a non-empty float32/float64 array."""
    return isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64) and x.ndim >= 1 and x.size > 0


def write_json(obj: Any, write: Write) -> None:
    """``obj`` as JSON text through ``write``, matrices (numpy arrays) streamed."""
    arrays: list[np.ndarray] = []
    tag = os.urandom(6).hex()  # no string in obj can be this placeholder by chance

    def swap(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: swap(v) for k, v in x.items()}
        if isinstance(x, list):
            return [swap(v) for v in x]
        if streamable(x):
            arrays.append(x)
            return f"{tag}{len(arrays) - 1}"
        if isinstance(x, np.ndarray):
            return nested(x)
        return x

    text = json.dumps(swap(obj), ensure_ascii=False, allow_nan=False)
    done = 0
    for m in re.finditer(f'"{tag}(\\d+)"', text):
        write(text[done : m.start()])
        write_matrix(arrays[int(m.group(1))], write)
        done = m.end()
    write(text[done:])


def write_matrix(M: np.ndarray, write: Write) -> None:
    """A float array as JSON nested lists, a block of rows per ``write``."""
    if M.ndim == 1:
        write_rows(M[None], write, bracket=False)
    elif M.ndim == 2:
        write_rows(M, write)
    else:
        write("[")
        for k in range(M.shape[0]):
            write(", " if k else "")
            write_matrix(M[k], write)
        write("]")


def write_rows(M: np.ndarray, write: Write, *, bracket: bool = True) -> None:
    """The rows of a 2-D float array, ``[r1, r2, …]`` (without the outer brackets when
    ``bracket`` is False: one row on its own).

    One ``%`` per row (per matrix when it is small). A row holding whole numbers (float32:
    ``%.1f``, as json writes 1.0) or ±inf/NaN (``null``) gets a template with those places
    changed; small matrices and short rows keep their templates (every head's causal map
    has the same pattern of masked places)."""
    cols = M.shape[1]
    f32 = M.dtype == np.float32
    specs = ("%.9g" if f32 else "%r", "null%.0s", "%.1f")  # by kind: plain, non-finite, whole
    if M.size <= SMALL:  # one head's map of a short text: one template and one % for all of it
        kinds = _kinds(M, f32)
        key = (f32, bracket, M.shape, b"" if kinds is None else kinds.tobytes())
        whole = _WHOLE.get(key)
        if whole is None:
            codes = cast("list[list[int]]", (np.zeros(M.shape, np.uint8) if kinds is None else kinds).tolist())
            whole = ", ".join(["[" + ", ".join([specs[k] for k in row]) + "]" for row in codes])
            whole = "[" + whole + "]" if bracket else whole
            if len(_WHOLE) < 512:
                _WHOLE[key] = whole
        write(whole % tuple(M.ravel().tolist()))
        return
    templates = _TEMPLATES[f32] if cols <= 64 else {}  # long rows: made for each row, never kept
    plain = "[" + ", ".join([specs[0]] * cols) + "]"
    step = max(1, ROWS_PER_BLOCK // max(cols, 1))
    if bracket:
        write("[")
    for lo in range(0, M.shape[0], step):
        block = M[lo : lo + step]
        rows = block.astype(np.float64, copy=False).tolist()
        kinds = _kinds(block, f32)
        if kinds is None:
            text = ", ".join([plain % tuple(r) for r in rows])
        else:
            parts = []
            for r, kind in zip(rows, kinds):
                key = kind.tobytes()
                row = templates.get(key)
                if row is None:
                    row = "[" + ", ".join([specs[k] for k in kind.tolist()]) + "]"
                    if cols <= 64 and len(templates) < 4096:
                        templates[key] = row
                parts.append(row % tuple(r))
            text = ", ".join(parts)
        write((", " if lo else "") + text)
    if bracket:
        write("]")


_TEMPLATES: dict[bool, dict[bytes, str]] = {True: {}, False: {}}  # float32?: kinds → row template
SMALL = 4096  # numbers: a matrix this small is written with one template (kept, up to 512 of them)
_WHOLE: dict[tuple[bool, bool, tuple[int, ...], bytes], str] = {}


def _kinds(block: np.ndarray, f32: bool) -> np.ndarray | None:
    """Per number: 0 plain, 1 non-finite (null), 2 whole float32 below 1e9 (``%.9g`` writes
    no exponent there, so json's ``1.0`` is ``%.1f``); None when every number is plain."""
    finite = np.isfinite(block)
    kinds = (~finite).view(np.uint8)
    if f32:
        with np.errstate(invalid="ignore"):
            whole = finite & (block == np.trunc(block)) & (np.abs(block) < 1e9)
        kinds = kinds | (whole.view(np.uint8) << 1)
    return kinds if kinds.any() else None
