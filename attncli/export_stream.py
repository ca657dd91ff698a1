"""The ``--json`` text written as it is made: matrices row by row, never whole.

The plain version is ``json.dumps`` of the object with every matrix as nested lists of
Python floats (:func:`attncli.export.nested`): ~40 bytes of Python objects per number and
the whole document as one string. Here the object is dumped by :mod:`json` with each
matrix replaced by a placeholder, and the text is written piece by piece with each matrix
written in its place a block of rows at a time:

- float32 as ``%.9g`` would write it (the same float32 back, like :func:`float32_digits`):
  a small matrix with one ``%`` and a kept template, a larger one by :func:`float32_text`
  with numpy for a whole block of rows at once (~4× faster than one ``%`` per number,
  which the tests keep as the reference; blocks made by threads, written in order),
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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Union, cast

import numpy as np

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

Write = Callable[[str], Any]

ROWS_PER_BLOCK = 1 << 16  # numbers per block of rows: ~1.5 MiB of Python floats at a time
FLOAT32_BLOCK = 1 << 15  # numbers per block for float32_text (~36 ns a number on one core; two threads: 32k best)
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
    """``obj`` as JSON text through ``write``, matrices (numpy arrays) streamed; many
    float32 numbers are formatted on threads, as many as the cores other work leaves free."""
    from attncli.core.blas import idle_cores

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
    many = sum(a.size for a in arrays if a.dtype == np.float32) >= 4 * FLOAT32_BLOCK
    cores = min(idle_cores(), 4) if many else 1  # /proc/loadavg read only for a large document
    pool = None
    if cores > 1:
        from concurrent.futures import ThreadPoolExecutor  # here: only large matrices need it

        pool = ThreadPoolExecutor(cores)

    def pieces() -> Iterator[Piece]:
        done = 0
        for m in re.finditer(f'"{tag}(\\d+)"', text):
            yield text[done : m.start()]
            yield from matrix_pieces(arrays[int(m.group(1))])
            done = m.end()
        yield text[done:]

    try:
        for piece in texts(pieces(), pool):
            write(piece)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


Piece = Union[str, np.ndarray]  # text, or a 2-D float32 block for float32_text


def texts(pieces: Iterable[Piece], pool: Optional[ThreadPoolExecutor] = None, ahead: int = 8) -> Iterator[str]:
    """Every piece as text, in order: float32 blocks made by :func:`float32_text`, on
    ``pool``'s threads when given (numpy lets go of the GIL), up to ``ahead`` blocks ahead
    across the whole document (never all of them: memory stays at a few blocks of text)."""
    if pool is None:
        yield from (p if isinstance(p, str) else float32_text(p) for p in pieces)
        return
    running: deque[Union[str, Future[str]]] = deque()
    blocks = 0
    for p in pieces:
        if isinstance(p, str):
            if not running:
                yield p
                continue
            running.append(p)
        else:
            running.append(pool.submit(float32_text, p))
            blocks += 1
        while blocks > ahead:
            first = running.popleft()
            if not isinstance(first, str):
                blocks -= 1
            yield first if isinstance(first, str) else first.result()
    for first in running:
        yield first if isinstance(first, str) else first.result()


def write_matrix(M: np.ndarray, write: Write) -> None:
    """A float array as JSON nested lists, a block of rows per ``write``."""
    for piece in texts(matrix_pieces(M)):
        write(piece)


def matrix_pieces(M: np.ndarray) -> Iterator[Piece]:
    """A float array as JSON nested lists, in pieces: text, or float32 blocks of rows."""
    if M.ndim == 1:
        yield from row_pieces(M[None], bracket=False)
    elif M.ndim == 2:
        yield from row_pieces(M)
    else:
        yield "["
        for k in range(M.shape[0]):
            if k:
                yield ", "
            yield from matrix_pieces(M[k])
        yield "]"


def row_pieces(M: np.ndarray, *, bracket: bool = True) -> Iterator[Piece]:
    """The rows of a 2-D float array, ``[r1, r2, …]`` (without the outer brackets when
    ``bracket`` is False: one row on its own).

    A small matrix: one ``%`` for all of it. A row holding whole numbers (float32:
    ``%.1f``, as json writes 1.0) or ±inf/NaN (``null``) gets a template with those places
    changed; small matrices and short rows keep their templates (every head's causal map
    has the same pattern of masked places). A larger float32 matrix: blocks of rows for
    :func:`float32_text`; float64: one ``%`` per row."""
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
        yield whole % tuple(M.ravel().tolist())
        return
    if bracket:
        yield "["
    if f32:
        step = max(1, FLOAT32_BLOCK // max(cols, 1))
        for lo in range(0, M.shape[0], step):
            if lo:
                yield ", "
            yield M[lo : lo + step]
    else:
        yield from _rows_by_template(M, specs)
    if bracket:
        yield "]"


def _rows_by_template(M: np.ndarray, specs: tuple[str, str, str]) -> Iterator[str]:
    """The rows of a float64 matrix, one ``%`` per row, a block of rows a piece."""
    cols = M.shape[1]
    templates = _ROW_TEMPLATES if cols <= 64 else {}  # long rows: made for each row, never kept
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
        yield (", " if lo else "") + text


_ROW_TEMPLATES: dict[bytes, str] = {}  # float64 rows: kinds → row template
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


W = 20  # bytes a number in float32_text: "[", sign, 14 of body, ", " or "], ", one spare
_ROW = np.dtype((np.void, W))


@cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32_text's tables, made at its first call (not at import: a run writing no JSON
    does not pay for them): 10^(i − 64) correctly rounded; the decimal exponent of a
    float32 from its binary one, floor((e − 127)·log₁₀2), which is X or X − 1; and the
    10,000 four-digit strings as uint32, then the same with their trailing zeros as NUL
    (dropped with every other NUL at the end)."""
    from fractions import Fraction

    pow10 = np.array([float(Fraction(10) ** (i - 64)) for i in range(128)])
    guess = np.floor((np.arange(256) - 127) * np.log10(2.0)).astype(np.int32)
    i = np.arange(10000)
    four = np.stack([i // 1000, i // 100 % 10, i // 10 % 10, i % 10], axis=1).astype(np.uint8) + ord("0")
    nonzero = np.maximum.accumulate((four != ord("0"))[:, ::-1], axis=1)[:, ::-1]  # a non-zero digit here or after
    cut = four * nonzero
    digits4 = np.concatenate([four, cut]).view(np.uint32).ravel()
    return pow10, guess, digits4


def float32_text(block: np.ndarray) -> str:
    """A 2-D float32 block as one ``"%.9g" %`` per number writes it (whole numbers with
    ``.0``, ±inf and NaN as null), byte for byte,
    made for every number at once: each is d₀.d₁…d₈ × 10^X, its nine digits D = x·10^(8−X)
    rounded (float64, within 2 ulp of the exact product); X from the float32's binary
    exponent and one comparison. A number whose product lies within 1e-6 of a rounding tie,
    or whose X was misjudged, and zeros, subnormals, ±inf and NaN are written by ``%``
    itself. Numbers are grouped by X (a stable radix sort), so each group's digits land in
    fixed columns of a byte matrix (one 20-byte row a number: ``[``, the number, ``], ``),
    written a column at a time; trailing zeros come from the table as NUL, and every NUL is
    dropped at the end."""
    pow10, guess, digits4 = _tables()
    rows, cols = block.shape
    x = np.ascontiguousarray(block, dtype=np.float32).ravel()
    N = x.size
    a = np.abs(x, dtype=np.float64)
    e2 = (x.view(np.uint32) >> 23) & 0xFF  # the binary exponent: 0 zero or subnormal, 255 inf or NaN
    X = guess[e2]
    X += a >= pow10[X + 65]
    y = a * pow10[72 - X]  # 10^8 ≤ y < 10^9 when X is right
    D = np.rint(y)
    with np.errstate(invalid="ignore"):  # ±inf and NaN: written by % below
        off = y - D
    np.abs(off, out=off)
    slow = (e2 == 0) | (e2 == 255) | (off > 0.5 - 1e-6) | (y < 1e8) | (y >= 1e9)
    carry = D == 1e9  # 999999999.5 and up: one digit more, 1.00000000 × 10^(X+1)
    D[carry | slow] = 1e8
    X += carry
    X[slow] = 0
    order = np.argsort((X + 64).astype(np.uint8), kind="stable")
    Di, X = D.astype(np.int32)[order], X[order]
    d0 = Di // 100000000
    rest = Di - d0 * 100000000  # d₁…d₈
    g1 = rest // 10000
    g2 = rest - g1 * 10000
    words = np.empty((N, 3), np.uint32)  # bytes 3…11: the nine digits
    words[:, 0] = (d0 + ord("0")) << 24
    g1 += (g2 == 0) * 10000  # d₁…d₄'s trailing zeros count only when d₅…d₈ are all zero
    g2 += 10000
    words[:, 1] = digits4[g1]  # indexing, not np.take or np.bincount below: they hold the GIL
    words[:, 2] = digits4[g2]
    digits = words.view(np.uint8)[:, 3:12]
    sorted_rows = np.zeros((N, W), np.uint8)
    lo = int(X[0])
    edges = np.searchsorted(X, np.arange(lo, int(X[-1]) + 2)).tolist()  # where each X begins (X is sorted)
    for e, start, end in zip(range(lo, lo + len(edges)), edges, edges[1:]):
        if end > start:
            _place(e, sorted_rows[start:end], digits[start:end], rest[start:end])
    out = np.empty((N, W), np.uint8)
    out.view(_ROW)[order, 0] = sorted_rows.view(_ROW)[:, 0]  # back in the block's order
    out[:, 1] = np.signbit(x) * np.uint8(ord("-"))
    out[:, 16] = ord(",")
    out[:, 17] = ord(" ")
    grid = out.reshape(rows, cols, W)
    grid[:, 0, 0] = ord("[")
    grid[:, -1, 16:19] = np.frombuffer(b"], ", np.uint8)
    grid[-1, -1, 17:19] = 0
    for i in np.flatnonzero(slow):
        text = _NON_FINITE.sub("null", "%.9g" % float(x[i]))
        text += ".0" if text.lstrip("-").isdigit() else ""
        out[i, 1:16] = 0
        out[i, 1 : 1 + len(text)] = np.frombuffer(text.encode(), np.uint8)
    flat = out.reshape(-1)
    return flat[flat != 0].tobytes().decode("ascii")  # every NUL dropped (numpy lets go of the GIL here)


def _place(X: int, rows: np.ndarray, digits: np.ndarray, rest: np.ndarray) -> None:
    """Numbers d₀…d₈ × 10^X (``digits``: trailing zeros NUL; ``rest``: d₁…d₈ as a number)
    written into bytes 2…15 of ``rows`` as ``%.9g`` lays them out, with json's ``.0`` on
    whole numbers, a byte column at a time (a strided column is ~10× faster in numpy than
    a block of narrow rows)."""
    if -4 <= X < 0:  # 0.000ddddddddd
        start = 4 - X - 1
        for k in range(2, start):
            rows[:, k] = ord("0")
        rows[:, 3] = ord(".")
        for k in range(9):
            rows[:, start + k] = digits[:, k]
    elif 0 <= X <= 8:  # ddd.dddddd: X + 1 digits (zeros kept) before the point, at least one after
        for k in range(X + 1):
            np.maximum(digits[:, k], ord("0"), out=rows[:, 2 + k])
        rows[:, 3 + X] = ord(".")
        for k in range(X + 1, 9):
            rows[:, 3 + k] = digits[:, k]
        if X == 8:
            rows[:, 12] = ord("0")
        else:
            np.maximum(digits[:, X + 1], ord("0"), out=rows[:, 4 + X])
    else:  # d.dddddddde±XX, no point when d₀ is the only digit
        rows[:, 2] = digits[:, 0]
        rows[:, 3] = (rest != 0) * np.uint8(ord("."))
        for k in range(1, 9):
            rows[:, 3 + k] = digits[:, k]
        for k, c in enumerate(f"e{'-' if X < 0 else '+'}{abs(X):02d}".encode()):
            rows[:, 12 + k] = c
