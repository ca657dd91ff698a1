"""The ``--json`` text written as it is made: matrices row by row, never whole.

The plain version is ``json.dumps`` of the object with every matrix as nested lists of
Python floats (:func:`attncli.export.nested`): ~40 bytes of Python objects per number and
the whole document as one string. Here the object is dumped by :mod:`json` with each
matrix replaced by a placeholder, and the text is written piece by piece with each matrix
written in its place a block of rows at a time:

- float32 as ``%.9g`` would write it (the same float32 back, like :func:`float32_digits`):
  a small matrix with one ``%`` and a kept template, a larger one by :func:`float32_text`
  with numpy for a whole block of rows at once (~1.8× faster than one ``%`` per row, which
  the tests keep as the reference),
- float64 as ``%r`` (Python's float repr: what :mod:`json` writes), one ``%`` per row,

±inf and NaN as ``null``, whole numbers with ``.0`` as :mod:`json` writes floats. The bytes
equal the plain version's (tested); memory stays at one block of rows
(bench/bench_long.py measures both against a plain row loop).
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from functools import cache
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, cast

import numpy as np

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

Write = Callable[[str], Any]

ROWS_PER_BLOCK = 1 << 16  # numbers per block of rows: ~1.5 MiB of Python floats at a time
FLOAT32_BLOCK = 1 << 14  # numbers per block for float32_text: its ~30 bytes a number stay in cache
_NON_FINITE = re.compile(r"-?inf|nan")


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
    cores = min(os.cpu_count() or 1, 4)
    many = sum(a.size for a in arrays if a.dtype == np.float32) >= 4 * FLOAT32_BLOCK
    pool = None
    if cores > 1 and many:
        from concurrent.futures import ThreadPoolExecutor  # here: only large matrices need it

        pool = ThreadPoolExecutor(cores)
    try:
        done = 0
        for m in re.finditer(f'"{tag}(\\d+)"', text):
            write(text[done : m.start()])
            write_matrix(arrays[int(m.group(1))], write, pool)
            done = m.end()
        write(text[done:])
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def write_matrix(M: np.ndarray, write: Write, pool: Optional[ThreadPoolExecutor] = None) -> None:
    """A float array as JSON nested lists, a block of rows per ``write`` (float32 blocks
    made by ``pool``'s threads when given: numpy lets go of the GIL, ~1.4× on 2 cores)."""
    if M.ndim == 1:
        write_rows(M[None], write, bracket=False)
    elif M.ndim == 2:
        write_rows(M, write, pool=pool)
    else:
        write("[")
        for k in range(M.shape[0]):
            write(", " if k else "")
            write_matrix(M[k], write, pool)
        write("]")


def write_rows(M: np.ndarray, write: Write, *, bracket: bool = True, pool: Optional[ThreadPoolExecutor] = None) -> None:
    """The rows of a 2-D float array, ``[r1, r2, …]`` (without the outer brackets when
    ``bracket`` is False: one row on its own).

    A small matrix: one ``%`` for all of it. A row holding whole numbers (float32:
    ``%.1f``, as json writes 1.0) or ±inf/NaN (``null``) gets a template with those places
    changed; small matrices and short rows keep their templates (every head's causal map
    has the same pattern of masked places). A larger float32 matrix: :func:`float32_text`
    a block of rows at a time (on ``pool``'s threads when given); float64: one ``%`` per
    row."""
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
    if bracket:
        write("[")
    if f32:
        step = max(1, FLOAT32_BLOCK // max(cols, 1))
        blocks = (M[lo : lo + step] for lo in range(0, M.shape[0], step))
        texts = map(float32_text, blocks) if pool is None else in_order(pool, float32_text, blocks)
        for k, text in enumerate(texts):
            write((", " if k else "") + text)
    else:
        _rows_by_template(M, write, specs)
    if bracket:
        write("]")


def _rows_by_template(M: np.ndarray, write: Write, specs: tuple[str, str, str]) -> None:
    """The rows of a float64 matrix, one ``%`` per row, a block of rows per ``write``."""
    cols = M.shape[1]
    templates = _TEMPLATES[False] if cols <= 64 else {}  # long rows: made for each row, never kept
    plain = "[" + ", ".join([specs[0]] * cols) + "]"
    step = max(1, ROWS_PER_BLOCK // max(cols, 1))
    for lo in range(0, M.shape[0], step):
        block = M[lo : lo + step]
        rows = block.astype(np.float64, copy=False).tolist()
        kinds = _kinds(block, False)
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


def in_order(
    pool: ThreadPoolExecutor, make: Callable[[np.ndarray], str], blocks: Iterator[np.ndarray], ahead: int = 6
) -> Iterator[str]:
    """``make`` of each block, in order, up to ``ahead`` blocks ahead on ``pool`` (never all
    of them: memory stays at a few blocks of text)."""
    running: deque[Future[str]] = deque()
    for block in blocks:
        running.append(pool.submit(make, block))
        if len(running) > ahead:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()


_V3, _V16, _V21 = (np.dtype((np.void, w)) for w in (3, 16, 21))


@cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float32_text's tables, made at its first call (not at import: a run writing no JSON
    does not pay for them): 10^(i − 64) correctly rounded; the 1,000 three-digit strings
    and their trailing zeros; which of a number's 16 characters stay, by a code: fixed
    notation cut after c characters (c = 0 … 16), the e form with its first c characters
    and its exponent (17 + c)."""
    from fractions import Fraction

    pow10 = np.array([float(Fraction(10) ** (i - 64)) for i in range(128)])
    digits3 = np.array([list(f"{i:03d}".encode()) for i in range(1000)], np.uint8).view(_V3).ravel()
    zeros3 = np.array([3] + [len(f"{i:03d}") - len(f"{i:03d}".rstrip("0")) for i in range(1, 1000)], np.int8)
    fixed = [[p < c for p in range(16)] for c in range(17)]
    e_form = [[p < c or 10 <= p < 14 for p in range(16)] for c in range(17)]
    keep = np.array(fixed + e_form, np.uint8).view(_V16).ravel()
    return pow10, digits3, zeros3, keep


def float32_text(block: np.ndarray) -> str:
    """A 2-D float32 block as one ``"%.9g" %`` per number writes it (whole numbers with
    ``.0``, ±inf and NaN as null), byte for byte,
    made for every number at once: each is d₀.d₁…d₈ × 10^X, its nine digits D = x·10^(8−X)
    rounded (float64, within 2 ulp of the exact product); a number whose product lies within
    1e-6 of a rounding tie, or whose X was misjudged, and zeros, ±inf and NaN are written by
    ``%`` itself. Numbers are grouped by X (a stable radix sort), so each group's digits
    land in fixed columns of a byte matrix (one 21-byte row a number: ``[``, the number,
    ``], ``), whose unused bytes are dropped at the end."""
    pow10, digits3, zeros3, kept = _tables()
    rows, cols = block.shape
    x = block.astype(np.float64).ravel()
    N = x.size
    a = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = np.isfinite(a) & (a != 0)
        X = np.floor(np.log10(np.where(ok, a, 1.0))).astype(np.int32)
        np.clip(X, -60, 60, out=X)
        y = a * pow10[72 - X]  # 10^8 ≤ y < 10^9 when X is right
        D = np.rint(y)
        tie = np.abs(y - np.floor(y) - 0.5) < 1e-6
    slow = ~ok | tie | (y < 1e8) | (y >= 1e9)
    carry = D == 1e9  # 999999999.5 and up: one digit more, 1.00000000 × 10^(X+1)
    D[carry | slow] = 1e8
    X += carry
    X[slow] = 0
    order = np.argsort((X + 64).astype(np.uint8), kind="stable")
    D, X = D[order].astype(np.int32), X[order]
    hi, mid, lo = D // 1000000, (D // 1000) % 1000, D % 1000
    digits = np.empty((N, 9), np.uint8)
    for k, part in enumerate((hi, mid, lo)):
        np.take(digits3, part, out=digits.view(_V3)[:, k])
    shown = 9 - np.where(lo == 0, 3 + np.where(mid == 0, 3 + zeros3[hi], zeros3[mid]), zeros3[lo])
    sorted_rows = np.zeros((N, 21), np.uint8)
    code = np.empty(N, np.intp)
    counts = np.bincount(X + 64, minlength=128)
    ends = np.cumsum(counts)
    for e in np.flatnonzero(counts):
        span = slice(ends[e] - counts[e], ends[e])
        code[span] = _place(int(e) - 64, sorted_rows[span, 2:18], digits[span], shown[span])
    sorted_rows[:, 2:18] *= kept[code].view(np.uint8).reshape(N, 16)
    out = np.empty((N, 21), np.uint8)
    out.view(_V21)[order, 0] = sorted_rows.view(_V21)[:, 0]  # back in the block's order
    out[:, 1] = np.signbit(x) * np.uint8(ord("-"))
    out[:, 18:20] = np.frombuffer(b", ", np.uint8)
    grid = out.reshape(rows, cols, 21)
    grid[:, 0, 0] = ord("[")
    grid[:, -1, 18:21] = np.frombuffer(b"], ", np.uint8)
    grid[-1, -1, 19:21] = 0
    for i in np.flatnonzero(slow):
        text = _NON_FINITE.sub("null", "%.9g" % float(x[i]))
        text += ".0" if text.lstrip("-").isdigit() else ""
        out[i, 1:18] = 0
        out[i, 1 : 1 + len(text)] = np.frombuffer(text.encode(), np.uint8)
    flat = out.ravel()
    return np.compress(flat != 0, flat).tobytes().decode("ascii")


def _place(X: int, body: np.ndarray, digits: np.ndarray, shown: np.ndarray) -> np.ndarray | int:
    """Numbers d₀…d₈ × 10^X written into ``body`` (one row each) as ``%.9g`` lays them out
    before its trailing zeros go; returns the code of each in :func:`_tables`' last table (``shown``
    significant digits)."""
    if -4 <= X < 0:  # 0.000ddddddddd
        z = -X - 1
        body[:, 0 : 2 + z] = ord("0")
        body[:, 1] = ord(".")
        body[:, 2 + z : 11 + z] = digits
        return 2 + z + shown
    if 0 <= X < 8:  # ddd.dddddd, at least one digit after the point (json's 1.0)
        body[:, 0 : X + 1] = digits[:, 0 : X + 1]
        body[:, X + 1] = ord(".")
        body[:, X + 2 : 10] = digits[:, X + 1 :]
        return np.maximum(shown, X + 2) + 1
    if X == 8:  # ddddddddd.0
        body[:, 0:9] = digits
        body[:, 9:11] = np.frombuffer(b".0", np.uint8)
        return 11
    body[:, 0] = digits[:, 0]  # d.dddddddde±XX
    body[:, 1] = ord(".")
    body[:, 2:10] = digits[:, 1:]
    body[:, 10:14] = np.frombuffer(f"e{'-' if X < 0 else '+'}{abs(X):02d}".encode(), np.uint8)
    return 17 + np.where(shown > 1, shown + 1, 1)
