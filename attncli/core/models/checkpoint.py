"""Reading a checkpoint folder: config.json and a memory-mapped model.safetensors."""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional, TypeAlias

import numpy as np

from attncli.core.models.config import LLAMA_FAMILY, MULTIMODAL, TEXT_PREFIXES, text_config
from attncli.errors import AttnError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike
    from tokenizers import Tokenizer

    from attncli.core.models.config import LlamaConfig

SUPPORTED = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert", "gpt2", *LLAMA_FAMILY, *MULTIMODAL)
DTYPES: dict[str, type[np.generic] | str] = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": "bf16",
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


class BF16:
    """A bfloat16 tensor left in the memory map: ``shape``, rows by index and
    ``np.asarray(t, dtype)`` widen only what is asked for (bf16 is the top half of float32)."""

    dtype = np.dtype(np.float32)

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw  # uint16 view into the file

    @property
    def shape(self) -> tuple[int, ...]:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    def __len__(self) -> int:
        return len(self.raw)

    @staticmethod
    def widen(raw: np.ndarray) -> np.ndarray:
        wide = raw.astype(np.uint32)
        wide <<= 16  # in place: one new array, not two
        return wide.view(np.float32)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.widen(np.asarray(self.raw[index]))

    def __array__(self, dtype: Optional[DTypeLike] = None, copy: Optional[bool] = None) -> np.ndarray:
        out = self.widen(self.raw)
        return out if dtype is None else out.astype(dtype, copy=False)


Weight: TypeAlias = "np.ndarray | BF16"  # a tensor as read: an array, or bfloat16 widened when used


def read_safetensors(path: Path) -> dict[str, Weight]:
    """Every tensor of a .safetensors file as a read-only view into a memory map (the
    format is an 8-byte header length, a JSON header, then raw little-endian data).
    bfloat16 tensors are widened to float32 when used (see :class:`BF16`)."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise AttnError(f"{path}: {exc.strerror}") from None
    with fh:
        try:
            (length,) = struct.unpack("<Q", fh.read(8))
            if 8 + length > os.fstat(fh.fileno()).st_size:
                raise ValueError(f"its header of {length} bytes runs past the end of the file")
            header = json.loads(fh.read(length), parse_constant=_no_constant)
            if not isinstance(header, dict):
                raise ValueError("its header is not a JSON object")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (struct.error, ValueError, OSError, RecursionError) as exc:
            raise AttnError(f"{path}: not a valid safetensors file ({exc})") from None
    base = 8 + length
    tensors: dict[str, Weight] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = DTYPES[info["dtype"]], list(info["shape"]), info["data_offsets"]
            if not all(isinstance(x, int) and x >= 0 for x in [*shape, start, end]) or start > end:
                raise ValueError("sizes and offsets must be whole numbers ≥ 0")
        except (KeyError, TypeError, ValueError):
            raise AttnError(f"{path}: tensor {name!r} has a header attncli cannot read") from None
        count = math.prod(shape)  # exact: a shape whose product overflows int64 is still caught below
        if base + end > len(mm):
            raise AttnError(f"{path}: tensor {name!r} runs past the end of the file (truncated?)")
        itemsize = 2 if isinstance(dtype, str) else np.dtype(dtype).itemsize  # str: only "bf16"
        if end - start != count * itemsize:
            raise AttnError(
                f"{path}: tensor {name!r} holds {end - start} bytes, but {info['dtype']} {list(shape)} needs"
                f" {count * itemsize}"
            )
        if isinstance(dtype, str):  # "bf16": widened when asked for, one tensor at a time (a 1B model would be 4 GB)
            raw = np.frombuffer(mm, dtype="<u2", count=count, offset=base + start)
            tensors[name] = BF16(raw.reshape(shape))
            continue
        arr = np.frombuffer(mm, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=base + start)
        tensors[name] = arr.reshape(shape)
    return tensors


def read_folder(folder: Path) -> dict[str, Weight]:
    """Every tensor of a model folder: ``model.safetensors``, or the shards listed in
    ``model.safetensors.index.json`` (how ``save_pretrained`` splits large models)."""
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return read_safetensors(single)
    if not index.is_file():
        pickles = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt")
        pickled = [n for n in pickles if (folder / n).exists()]
        hint = (
            f" (there is {pickled[0]}: a pickle, which attncli never loads; re-save the model with"
            " save_pretrained(..., safe_serialization=True))"
            if pickled
            else ""
        )
        if not hint and any(folder.glob("*.npy")):
            hint = " (a folder is read as a model folder; for .npy word vectors give the .npy file)"
        raise AttnError(f"{folder}: missing model.safetensors{hint}")
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"), parse_constant=_no_constant)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise AttnError(f"{index}: not a valid safetensors index ({type(exc).__name__}: {exc})") from None
    tensors: dict[str, Weight] = {}
    for shard in shards:
        path = folder / shard
        if Path(shard).name != shard or not path.is_file():
            raise AttnError(f"{index}: names the shard {shard!r}, which is not in the folder")
        tensors.update(read_safetensors(path))
    missing = [name for name in weight_map if name not in tensors]
    if missing:
        raise AttnError(f"{index}: tensor {missing[0]!r} is in none of its shards")
    return tensors


@dataclass
class Checkpoint:
    folder: Path
    config: dict[str, Any]
    tensors: Mapping[str, Weight]
    prefixes: tuple[str, ...] = field(
        default=("", "bert.", "roberta.", "electra.", "distilbert.", "transformer.", "model.")
    )
    tok: Optional[Tokenizer] = field(default=None, repr=False)  # a GGUF file brings its own
    if TYPE_CHECKING:  # the Llama-family settings, cached on the instance by llama_config()/load_gguf;
        # declared for the type checker only, so the dataclass's fields stay as they are
        llama: LlamaConfig = field(init=False)

    @property
    def model_type(self) -> str:
        return self.config["model_type"]

    def tokenizer(self) -> Tokenizer:
        """The tokenizer the model's text goes through: the folder's tokenizer.json (or its
        vocabulary files), read on first use; a GGUF file's is rebuilt when it is read."""
        if self.tok is None:
            from attncli.core.tokenize import load_tokenizer

            self.tok = load_tokenizer(self.folder)
        return self.tok

    def has(self, name: str) -> bool:
        return any(prefix + name in self.tensors for prefix in self.prefixes)

    def get(self, name: str, dtype: DTypeLike = np.float32) -> np.ndarray:
        """A tensor by its name without the model prefix (``bert.``, ``transformer.``);
        LayerNorm weight/bias also answer to the old gamma/beta names."""
        aliases = [name]
        if name.endswith("LayerNorm.weight"):
            aliases.append(name[: -len("weight")] + "gamma")
        if name.endswith("LayerNorm.bias"):
            aliases.append(name[: -len("bias")] + "beta")
        for alias in aliases:
            for prefix in self.prefixes:
                if prefix + alias in self.tensors:
                    return np.asarray(self.tensors[prefix + alias], dtype=dtype)
        raise AttnError(f"{self.folder}: missing tensor {name!r} in model.safetensors")

    def cfg(self, *keys: str, default: Any = None) -> Any:
        for k in keys:
            if k in self.config:
                return self.config[k]
        if default is not None:
            return default
        raise AttnError(f"{self.folder}/config.json: missing {keys[0]!r}")


def load_folder(folder: str | Path) -> Checkpoint:
    """A Hugging Face checkpoint folder (config.json, safetensors); see :func:`load`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AttnError(
            f"{folder}: not a folder or a GGUF file (a checkpoint folder holds config.json,"
            " model.safetensors, tokenizer.json)"
        )
    if not (folder / "config.json").is_file():
        raise AttnError(f"{folder}: missing config.json")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise AttnError(f"{folder}/config.json: nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttnError(f"{folder}/config.json: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise AttnError(f"{folder}/config.json: expected a JSON object of settings")
    if "model_type" not in config:
        raise AttnError(
            f"{folder}/config.json: the key model_type is missing (it names the architecture:"
            f" attncli reads {', '.join(SUPPORTED)})"
        )
    kind = config.get("model_type")
    if kind not in SUPPORTED:
        raise AttnError(
            f"{folder}/config.json: model_type {kind!r} is not supported (attncli reads {', '.join(SUPPORTED)})"
        )
    tensors = read_folder(folder)
    if kind in MULTIMODAL:  # image + text: the language model's attention, under its own prefix
        config = text_config(config, f"{folder}/config.json")
        check_layers(folder, config, {n: t for n, t in tensors.items() if n.startswith(TEXT_PREFIXES[:3])})
        return Checkpoint(folder, config, tensors, TEXT_PREFIXES)
    check_layers(folder, config, tensors)
    return Checkpoint(folder, config, tensors)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers")
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")


def check_layers(folder: Path, config: dict[str, Any], tensors: Mapping[str, object]) -> None:
    """The layer count config.json states must be in the file, before a forward pass
    allocates anything by it (a 150-byte config saying 10⁹ layers)."""
    for key in LAYER_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            held = 1 + max((int(m.group(1)) for n in tensors for m in [_LAYER_INDEX.search(n)] if m), default=-1)
            if value > held:
                raise AttnError(f"{folder}/config.json: {key} is {value}, but the checkpoint holds {held} layers")
            return
