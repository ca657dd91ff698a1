"""GGUF files (llama.cpp, Ollama), dequantised with the ``gguf`` package, presented as the same
Checkpoint the Llama-family forward pass reads from a safetensors folder.

* metadata ``{arch}.embedding_length``, ``.block_count``, ``.attention.head_count`` … become
  the config.json keys transformers would write, so one LlamaConfig reader serves both;
* the container is parsed by :mod:`attncli.core.models.gguf_file` (fast on 100k-token
  vocabularies); tensors are dequantised with ``gguf.quants``;
* tensors answer to Hugging Face names (``model.layers.0.self_attn.q_proj.weight`` ←
  ``blk.0.attn_q.weight``), dequantised lazily, one tensor at a time, from the memory map;
* llama.cpp's converter undone: for ``llama`` files it reorders the rows of attn_q/attn_k so
  that rotation acts on adjacent pairs (row 2k+s of a head ← row k + s·q/2), which is inverted
  here, so the split-in-half rotation applies; Gemma norm weights were stored as 1 + w, so
  1 is taken off again;
* the tokenizer is rebuilt from ``tokenizer.ggml.*`` with the ``tokenizers`` library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import numpy as np

from attncli.core.models.checkpoint import Checkpoint
from attncli.core.models.config import read_config
from attncli.core.models.gguf_file import Tensor, read_gguf
from attncli.errors import AttnError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

PERMUTED = ("llama", "mistral")  # llama.cpp's converter interleaves the q/k rows of these
QUANTS = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

LAYER_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "input_layernorm": "attn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "pre_feedforward_layernorm": "ffn_norm",  # Gemma 2/3
    "post_feedforward_layernorm": "post_ffw_norm",
}
TOP_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def is_gguf(path: str | Path) -> bool:
    """A file whose first four bytes are the GGUF magic (or named .gguf)."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() == ".gguf":
        return True
    with open(p, "rb") as fh:
        return fh.read(4) == b"GGUF"


def hf_to_gguf(arch: str) -> dict[str, str]:
    """Hugging Face name → llama.cpp name, for every layer-independent pattern."""
    names = dict(LAYER_NAMES)
    sandwich = arch in ("gemma2", "gemma3")
    names["post_attention_layernorm"] = "post_attention_norm" if sandwich else "ffn_norm"
    if not sandwich:
        del names["pre_feedforward_layernorm"], names["post_feedforward_layernorm"]
    return names


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's ``permute``: within each head its rows were ordered
    (0, q/2, 1, q/2+1, …); put them back to (0, 1, …, q/2, …) for split-in-half RoPE."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class GGUFTensors(Mapping[str, np.ndarray]):
    """The file's tensors under Hugging Face names, dequantised to float32 when asked for."""

    def __init__(self, path: Path, table: list[Tensor], arch: str, heads: int, kv_heads: int) -> None:
        self.path, self.arch, self.heads, self.kv_heads = path, arch, heads, kv_heads
        self.raw = {t.name: t for t in table}
        self.names: dict[str, str] = {}  # HF → GGUF
        for hf, gg in TOP_NAMES.items():
            if gg in self.raw:
                self.names[hf] = gg
        layer_map = hf_to_gguf(arch)
        blocks = {int(n.split(".")[1]) for n in self.raw if n.startswith("blk.")}
        for i in blocks:
            for hf, gg in layer_map.items():
                for kind in ("weight", "bias"):
                    if f"blk.{i}.{gg}.{kind}" in self.raw:
                        self.names[f"model.layers.{i}.{hf}.{kind}"] = f"blk.{i}.{gg}.{kind}"

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def shape(self, hf: str) -> tuple[int, ...]:
        """numpy shape (GGUF lists dimensions fastest first: ne[0] is a row's length)."""
        return tuple(int(d) for d in reversed(self.raw[self.names[hf]].shape))

    def __getitem__(self, hf: str) -> np.ndarray:
        t = self.raw[self.names[hf]]
        w = dequantize(self.path, t).reshape(self.shape(hf))
        return self.fix(hf, w)

    def fix(self, hf: str, w: np.ndarray) -> np.ndarray:
        """Undo what llama.cpp's converter changed (q/k row order, Gemma's 1 + w)."""
        if self.arch in PERMUTED and ".self_attn.q_proj." in hf:
            w = unpermute(w, self.heads)
        elif self.arch in PERMUTED and ".self_attn.k_proj." in hf:
            w = unpermute(w, self.kv_heads)
        if self.arch.startswith("gemma") and hf.endswith("norm.weight"):
            w = w - np.float32(1)
        return w

    def rows(self, hf: str, ids: list[int]) -> np.ndarray:
        """Only the given rows of a 2-D tensor, dequantised (rows are whole blocks)."""
        t = self.raw[self.names[hf]]
        vocab = self.shape(hf)[0]
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise AttnError(f"{self.path}: token id {bad[0]} is outside the embedding table ({vocab} rows)")
        data = np.asarray(t.data).reshape(vocab, -1)[np.asarray(ids, dtype=np.int64)]
        return dequantize(self.path, t, data).reshape(len(ids), -1)


def dequantize(path: Path, t: Any, data: Optional[np.ndarray] = None) -> np.ndarray:
    """One tensor (or some of its rows) as float32, with gguf's numpy dequantisation."""
    from gguf import GGMLQuantizationType, quants

    try:
        kind = GGMLQuantizationType(t.tensor_type).name
    except ValueError:
        kind = f"type {t.tensor_type}"
    if kind not in QUANTS:
        raise AttnError(
            f"{path}: tensor {t.name!r}: quantisation {kind} is not supported (attncli reads {', '.join(QUANTS)})"
        )
    data = t.data if data is None else data
    try:
        if kind == "F32":
            return np.asarray(data, dtype=np.float32)
        if kind == "F16":
            return np.asarray(data).astype(np.float32)
        if kind == "BF16":
            return quants.dequantize(np.asarray(data), t.tensor_type).astype(np.float32, copy=False)
        return _by_chunks(getattr(quants, kind), np.asarray(data))
    except (ValueError, TypeError, IndexError) as exc:
        raise AttnError(f"{path}: tensor {t.name!r} cannot be dequantised ({exc})") from None


CHUNK = 1 << 16  # bytes of quantised rows per call: its temporaries (~7x) stay small, no page faults


def _by_chunks(kind: Any, data: np.ndarray) -> np.ndarray:
    """gguf's own block dequantisation (``kind.dequantize_rows``) over 64 KB of rows at a
    time: ``quants.dequantize`` calls it on 16 rows at a time, and for a 576-wide model
    the calls cost more than the arithmetic (the same numbers, tested)."""
    rows = data.reshape(-1, data.shape[-1])
    width = rows.shape[1] // kind.type_size * kind.block_size
    out = np.empty((rows.shape[0], width), np.float32)
    step = max(1, CHUNK // max(rows.shape[1], 1))
    for lo in range(0, rows.shape[0], step):
        out[lo : lo + step] = kind.dequantize_rows(rows[lo : lo + step])
    return out.reshape(*data.shape[:-1], width)


class GGUFCheckpoint(Checkpoint):
    """A Checkpoint over a GGUF file: ``get``/``has`` by Hugging Face names, plus
    ``shape(name)`` and ``rows(name, ids, dtype)`` so nothing is dequantised just to look."""

    tensors: GGUFTensors

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors.shape(self._name(name))

    def rows(self, name: str, ids: list[int], dtype: DTypeLike) -> np.ndarray:
        return self.tensors.rows(self._name(name), ids).astype(dtype, copy=False)

    def _name(self, name: str) -> str:
        for prefix in self.prefixes:
            if prefix + name in self.tensors:
                return prefix + name
        raise AttnError(f"{self.folder}: missing tensor {name!r} (llama.cpp name {self.gguf_name(name)!r})")

    def gguf_name(self, name: str) -> str:
        for hf, gg in hf_to_gguf(self.tensors.arch).items():
            if f".{hf}." in f".{name}":
                layer = name.split(".")[1] if name.startswith("layers.") else "?"
                return f"blk.{layer}.{gg}.{name.rsplit('.', 1)[-1]}"
        return TOP_NAMES.get("model." + name, TOP_NAMES.get(name, name))

    def get(self, name: str, dtype: DTypeLike = np.float32) -> np.ndarray:
        return np.asarray(self.tensors[self._name(name)], dtype=dtype)


def load_gguf(path: str | Path) -> GGUFCheckpoint:
    """A GGUF file as a GGUFCheckpoint the Llama-family forward pass reads like a
    safetensors folder, carrying the ``tokenizers.Tokenizer`` rebuilt from the file's
    vocabulary (``ck.tokenizer()``)."""
    from attncli.core.models.gguf_config import config_from_metadata
    from attncli.core.models.gguf_tokenizer import tokenizer_from_metadata

    path = Path(path)
    try:
        import gguf  # noqa: F401  (dequantisation and the quantisation tables)
    except ImportError:
        raise AttnError("reading GGUF files needs the gguf package: pip install gguf") from None
    meta, table = read_gguf(path)
    arch, config = config_from_metadata(path, meta, {t.name for t in table})
    tensors = GGUFTensors(path, table, arch, config["num_attention_heads"], config["num_key_value_heads"])
    ck = GGUFCheckpoint(path, config, tensors, tok=tokenizer_from_metadata(path, meta))
    cfg = read_config(config, f"{path} (metadata)")
    if "rope_freqs.weight" in tensors.raw:  # llama 3.1's scaling, baked into per-frequency factors
        factors = tuple(float(f) for f in dequantize(path, tensors.raw["rope_freqs.weight"]).ravel())
        cfg = dataclasses.replace(cfg, rope_global=dataclasses.replace(cfg.rope_global, freq_factors=factors))
    ck.llama = cfg
    return ck
