"""The GGUF container read directly from a memory map: header, metadata, tensor table.

gguf's ``GGUFReader`` turns every element of every metadata array into a numpy view
(~15 µs each); a Llama 3 file carries 128k tokens and 280k merges, so opening it took
seconds. Here strings are decoded with ``struct`` and numeric arrays with one
``np.frombuffer``; tensors stay views into the map, in the layout ``GGUFReader`` gives them
(float arrays shaped in numpy order; quantised ones as uint8 rows of blocks), so
``gguf.quants.dequantize`` reads them as it reads the reader's.

Layout (little-endian): b"GGUF", u32 version, u64 tensor count, u64 metadata count;
metadata: string key, u32 type, value; tensors: string name, u32 n_dims, u64 ne[n_dims]
(fastest first), u32 type, u64 offset from the aligned start of the data.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attncli.errors import AttnError

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class Truncated(Exception):
    pass


@dataclass(frozen=True)
class Tensor:
    name: str
    tensor_type: int  # a gguf.GGMLQuantizationType value
    shape: tuple[int, ...]  # ne order, as GGUFReader gives it (fastest dimension first)
    data: np.ndarray


class Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.at = buf, 0

    def scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.buf):
            raise Truncated
        (value,) = struct.unpack_from(fmt, self.buf, self.at)
        self.at += size
        return value

    def string(self) -> str:
        n = self.scalar("<Q")
        if self.at + n > len(self.buf):
            raise Truncated
        raw = self.buf[self.at : self.at + n]
        self.at += n
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            return self.array()
        if kind not in SCALARS:
            raise ValueError(f"unknown metadata type {kind}")
        return self.scalar(SCALARS[kind])

    def array(self) -> list[Any]:
        """Strings one by one; numbers in one frombuffer."""
        kind, count = self.scalar("<I"), self.scalar("<Q")
        if kind in SCALARS and kind != 7:
            dtype = np.dtype(SCALARS[kind])
            if self.at + count * dtype.itemsize > len(self.buf):
                raise Truncated
            out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.at).tolist()
            self.at += count * dtype.itemsize
            return out
        return [self.value(kind) for _ in range(count)]


def read_gguf(path: Path) -> tuple[dict[str, Any], list[Tensor]]:
    """(metadata, tensors) of a GGUF file; a file that is not one, or is cut short, is one
    AttnError naming it."""
    try:
        with open(path, "rb") as fh:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise AttnError(f"{path}: not a valid GGUF file ({exc})") from None
    try:
        return _parse(path, buf)
    except Truncated:
        raise AttnError(f"{path}: not a valid GGUF file (it ends early: truncated?)") from None
    except (ValueError, OverflowError, struct.error) as exc:
        raise AttnError(f"{path}: not a valid GGUF file ({exc})") from None


def _parse(path: Path, buf: mmap.mmap) -> tuple[dict[str, Any], list[Tensor]]:
    cur = Cursor(buf)
    if buf[:4] != b"GGUF":
        raise ValueError("it does not start with GGUF")
    cur.at = 4
    version = cur.scalar("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} (attncli reads 2 and 3)")
    n_tensors, n_kv = cur.scalar("<Q"), cur.scalar("<Q")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        meta[key] = cur.value(cur.scalar("<I"))
    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        dims = [cur.scalar("<Q") for _ in range(cur.scalar("<I"))]
        infos.append((name, tuple(dims), cur.scalar("<I"), cur.scalar("<Q")))
    align = int(meta.get("general.alignment", 32)) or 32
    start = -(-cur.at // align) * align
    return meta, [_tensor(buf, start, *info) for info in infos]


def _tensor(buf: mmap.mmap, start: int, name: str, ne: tuple[int, ...], kind: int, offset: int) -> Tensor:
    """A view of one tensor's bytes: float types shaped in numpy order (ne reversed),
    quantised ones as uint8 rows (…, bytes per row)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(kind)
        block, size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):  # a type this gguf does not know: refused when used
        return Tensor(name, kind, ne, np.zeros(0, np.uint8))
    count = int(np.prod(ne)) if ne else 1
    if ne and ne[0] % block:
        raise ValueError(f"tensor {name!r}: rows of {ne[0]} do not fill {qtype.name} blocks of {block}")
    nbytes = count // block * size
    at = start + offset
    if at + nbytes > len(buf):
        raise Truncated
    numpy_shape = tuple(reversed(ne)) or (1,)
    typed = {
        "F32": np.float32,
        "F16": np.float16,
        "F64": np.float64,
        "I8": np.int8,
        "I16": np.int16,
        "I32": np.int32,
        "I64": np.int64,
    }.get(qtype.name)
    if typed is not None:
        data = np.frombuffer(buf, dtype=typed, count=count, offset=at).reshape(numpy_shape)
    else:
        data = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=at)
        data = data.reshape(*numpy_shape[:-1], ne[0] // block * size)
    return Tensor(name, kind, ne, data)
