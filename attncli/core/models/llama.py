"""The forward pass of Llama-family decoders in numpy: Llama, Mistral, Qwen 2/3, Gemma 1/2/3.

One block, with x the n×r residual stream (rows are tokens, as the checkpoints store it):

    h = RMSNorm(x)                              RMSNorm(x) = x / √(mean(x²) + ε) · w   (Gemma: · (1 + w))
    q, k, v = h W^qᵀ, h W^kᵀ, h W^vᵀ            n×H·q, n×G·q, n×G·q  (+ biases for Qwen 2)
    q, k = RMSNorm per head (Qwen 3, Gemma 3), then rotated by position (RoPE)
    Q, K, V = the same, columns are tokens      H×q×n, G×q×n, G×q×n  (the notes' layout)
    A, A', O = attend_heads(Q, K, V)            A[h, i, j] = k^i · q^j · scale, causal (+ window)
    x = x + (O stacked) W^oᵀ                    (Gemma 2/3: RMSNorm before adding)
    x = x + W^down (act(h W^gateᵀ) ⊙ h W^upᵀ)   h = RMSNorm(x); SwiGLU (silu) or GeGLU (gelu)

Weights are read one layer at a time from the memory-mapped checkpoint (a GGUF file
answers to the same names, see :mod:`attncli.core.models.gguf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from attncli.core import blas
from attncli.core.attention import Packing, attend_heads
from attncli.core.models.checkpoint import Checkpoint
from attncli.core.models.config import LlamaConfig, Rope, read_config
from attncli.core.result import Dims
from attncli.errors import AttnError

Record = Callable[[int, Optional[np.ndarray], Union[np.ndarray, list[np.ndarray]]], None]  # batch: A' per group


def llama_config(ck: Checkpoint) -> LlamaConfig:
    """The checkpoint's settings, read once (a GGUF checkpoint brings its own)."""
    cfg = getattr(ck, "llama", None)
    if cfg is None:
        cfg = read_config(ck.config, f"{ck.folder}/config.json")
        try:
            ck.llama = cfg  # Checkpoint is a plain dataclass: cache on the instance
        except AttributeError:
            pass
    return cfg


def dims(ck: Checkpoint, n: int) -> Dims:
    """The notes' sizes of a Llama-family model: q = v = head_dim (from the config, which
    may differ from r/H), H query heads sharing G key/value heads."""
    cfg = llama_config(ck)
    return Dims(r=cfg.r, q=cfg.q, v=cfg.q, heads=cfg.H, n=n, layers=cfg.layers, kv_heads=cfg.G)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float, plus_one: bool = False) -> np.ndarray:
    """RMSNorm over the last axis: x / √(mean(x²) + ε) · w, or · (1 + w) for Gemma."""
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.asarray(eps, x.dtype))
    return y * (w + np.asarray(1, w.dtype) if plus_one else w)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """gelu(x) ≈ ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """gelu(x) = ½ x (1 + erf(x/√2)); erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(x.dtype)


ACT = {"silu": silu, "swish": silu, "gelu_pytorch_tanh": gelu_tanh, "gelu_new": gelu_tanh, "gelu_fast": gelu_tanh}
ACT["gelu"] = gelu_erf


def inverse_frequencies(rope: Rope, q: int) -> np.ndarray:
    """θ_k = base^(−2k/q) for k = 0 … q/2 − 1 (q/2 values), rescaled:
    linear: θ_k / factor; llama3: long wavelengths (> original/low) divided by factor,
    short ones (< original/high) kept, the band between interpolated smoothly."""
    inv = 1.0 / rope.base ** (np.arange(0, q, 2, dtype=np.float64) / q)
    if rope.freq_factors is not None:
        return inv / np.asarray(rope.freq_factors, dtype=np.float64)
    if rope.kind == "linear":
        return inv / rope.factor
    if rope.kind == "llama3":
        wavelen = 2 * math.pi / inv
        low, high = rope.original_max / rope.low_freq_factor, rope.original_max / rope.high_freq_factor
        scaled = np.where(wavelen > low, inv / rope.factor, inv)
        smooth = (rope.original_max / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
        mid = (wavelen >= high) & (wavelen <= low)
        return np.where(mid, (1 - smooth) * scaled / rope.factor + smooth * scaled, scaled)
    return inv


def rotate(x: np.ndarray, pos: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """RoPE in Hugging Face's split-in-half convention, x: n×heads×q, pos: n.

        x' = x cos(p θ) + rotate_half(x) sin(p θ),  rotate_half([x₁, x₂]) = [−x₂, x₁]
    (dimension k pairs with k + q/2, both turned by angle p θ_k)."""
    angles = pos[:, None].astype(np.float64) * inv[None, :]  # n × q/2
    cos = np.cos(np.concatenate([angles, angles], axis=1)).astype(x.dtype)[:, None, :]  # n×1×q
    sin = np.sin(np.concatenate([angles, angles], axis=1)).astype(x.dtype)[:, None, :]
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def visible(keys: np.ndarray, queries: np.ndarray, window: Optional[int]) -> np.ndarray:
    """mask[i, j]: key at position keys[i] is seen by the query at position queries[j]:
    i ≤ j, and j − i < window on a sliding-window layer."""
    d = queries[None, :] - keys[:, None]  # t × m
    return (d >= 0) & (d < window) if window else d >= 0


@dataclass
class Cache:
    """Rotated keys and the values of every layer so far (G×q×t each): a new token costs
    one position."""

    K: dict[int, np.ndarray] = field(default_factory=dict)
    V: dict[int, np.ndarray] = field(default_factory=dict)

    def extend(self, layer: int, K: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if layer in self.K:
            K, V = np.concatenate([self.K[layer], K], axis=2), np.concatenate([self.V[layer], V], axis=2)
        self.K[layer], self.V[layer] = K, V
        return K, V


@dataclass(frozen=True)
class Block:
    """One layer's weights, converted to ``dtype`` when the layer runs (and then dropped)."""

    ck: Checkpoint
    cfg: LlamaConfig
    layer: int
    dtype: type

    def w(self, name: str) -> np.ndarray:
        return self.ck.get(f"layers.{self.layer}.{name}", self.dtype)

    def has(self, name: str) -> bool:
        return self.ck.has(f"layers.{self.layer}.{name}")

    def linear(self, name: str, h: np.ndarray) -> np.ndarray:
        """y = h Wᵀ (+ b): PyTorch's nn.Linear; W is out × in."""
        y = h @ self.w(name + ".weight").T
        return y + self.w(name + ".bias") if self.has(name + ".bias") else y

    def norm(self, name: str, x: np.ndarray) -> np.ndarray:
        return rms_norm(x, self.w(name + ".weight"), self.cfg.eps, self.cfg.norm_plus_one)


def project(b: Block, h: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q H×q×m, K G×q×m, V G×q×m in the notes' layout, from h (m×r, rows are tokens)."""
    cfg, m = b.cfg, h.shape[0]
    q = b.linear("self_attn.q_proj", h).reshape(m, cfg.H, cfg.q)  # m × H × q
    k = b.linear("self_attn.k_proj", h).reshape(m, cfg.G, cfg.q)  # m × G × q
    v = b.linear("self_attn.v_proj", h).reshape(m, cfg.G, cfg.q)
    if cfg.qk_norm:
        q, k = b.norm("self_attn.q_norm", q), b.norm("self_attn.k_norm", k)
    rope = cfg.rope_local if cfg.sliding[b.layer] else cfg.rope_global
    inv = inverse_frequencies(rope, cfg.q)
    q, k = rotate(q, pos, inv), rotate(k, pos, inv)
    return q.transpose(1, 2, 0), k.transpose(1, 2, 0), v.transpose(1, 2, 0)  # rows → columns


def block(
    b: Block,
    x: np.ndarray,
    pos: np.ndarray,
    record: Optional[Record],
    cache: Optional[Cache] = None,
    batch: Optional[Packing] = None,
) -> np.ndarray:
    """x (m×r) at positions ``pos`` through one block; keys and values of earlier positions
    come from ``cache``. ``record(layer, A, A')`` gets H×t×m stacks (t keys, m queries);
    with a ``batch`` (packed groups of sequences, no cache) A is None and A' is a list of
    B×H×n×n padded stacks, one per group."""
    cfg = b.cfg
    Q, K, V = project(b, b.norm("input_layernorm", x), pos)
    if cache is not None:
        K, V = cache.extend(b.layer, K, V)  # G×q×t
    window = cfg.window if cfg.sliding[b.layer] else None
    if batch is not None:  # the groups' A' (padded stacks), O packed
        square = np.arange(batch.n)
        A_primes, O = batch.attend(Q, K, V, scale=cfg.scale, mask=visible(square, square, window), softcap=cfg.softcap)
        if record is not None:
            record(b.layer, None, A_primes)
    else:
        keys = np.arange(K.shape[2])
        A, A_prime, O = attend_heads(Q, K, V, scale=cfg.scale, mask=visible(keys, pos, window), softcap=cfg.softcap)
        assert A is not None  # kept: keep_scores is on
        if record is not None:
            record(b.layer, A, A_prime)
    o = b.linear("self_attn.o_proj", O.transpose(2, 0, 1).reshape(len(pos), cfg.H * cfg.q))  # m×r
    if cfg.sandwich:
        x = x + b.norm("post_attention_layernorm", o)
        h = b.norm("pre_feedforward_layernorm", x)
    else:
        x = x + o
        h = b.norm("post_attention_layernorm", x)  # Llama's name for the norm before the MLP
    f = b.linear("mlp.down_proj", ACT[cfg.act](b.linear("mlp.gate_proj", h)) * b.linear("mlp.up_proj", h))
    return x + (b.norm("post_feedforward_layernorm", f) if cfg.sandwich else f)


def check_shapes(ck: Checkpoint, cfg: LlamaConfig) -> None:
    """config.json against the first block's tensors (a mismatch would give a wrong scale)."""
    where = ck.folder
    expect = {
        "self_attn.q_proj.weight": (cfg.H * cfg.q, cfg.r),
        "self_attn.k_proj.weight": (cfg.G * cfg.q, cfg.r),
        "self_attn.v_proj.weight": (cfg.G * cfg.q, cfg.r),
        "self_attn.o_proj.weight": (cfg.r, cfg.H * cfg.q),
    }
    for name, shape in expect.items():
        got = tuple(shape_of(ck, f"layers.0.{name}"))
        if got != shape:
            raise AttnError(
                f"{where}: config (hidden_size {cfg.r}, {cfg.H} heads, {cfg.G} key/value heads, head_dim {cfg.q})"
                f" needs layers.0.{name} of shape {list(shape)}, but it has {list(got)}"
            )


def shape_of(ck: Checkpoint, name: str) -> tuple[int, ...]:
    """A tensor's shape without converting it (bf16 and GGUF tensors are converted lazily)."""
    shape = getattr(ck, "shape", None)
    if shape is not None:  # a GGUF checkpoint: no dequantising just to look
        return tuple(shape(name))
    for prefix in ck.prefixes:
        if prefix + name in ck.tensors:
            return tuple(ck.tensors[prefix + name].shape)
    raise AttnError(f"{ck.folder}: missing tensor {name!r} in model.safetensors")


def embed(ck: Checkpoint, cfg: LlamaConfig, ids: list[int], dtype: type) -> np.ndarray:
    """The ids' rows of the embedding table (n×r), × √r for Gemma (√r rounded to the
    weights' dtype first, as transformers does). Only those rows are converted."""
    rows = getattr(ck, "rows", None)
    if rows is not None:  # a GGUF checkpoint dequantises just these rows
        x = rows("embed_tokens.weight", ids, dtype)
    else:
        name = next((p + "embed_tokens.weight" for p in ck.prefixes if p + "embed_tokens.weight" in ck.tensors), None)
        if name is None:
            raise AttnError(f"{ck.folder}: missing tensor 'embed_tokens.weight'")
        table = ck.tensors[name]  # vocab × r, still memory-mapped
        bad = [i for i in ids if not 0 <= i < table.shape[0]]
        if bad:
            raise AttnError(f"{ck.folder}: token id {bad[0]} is outside the embedding table ({table.shape[0]} rows)")
        x = np.asarray(table[np.asarray(ids, dtype=np.int64)], dtype=dtype)
    return x * np.asarray(cfg.embed_scale, dtype) if cfg.embed_scale != 1.0 else x


def positions(cfg: LlamaConfig, ck: Checkpoint, n: int) -> np.ndarray:
    if n > cfg.max_positions:
        raise AttnError(f"the text has {n} tokens; {ck.folder} takes at most {cfg.max_positions}")
    return np.arange(n)


def forward(
    ck: Checkpoint, ids: list[int], dtype: type, last: int, record: Record, *, batch: Optional[Packing] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run blocks 0..last-1. For each block call record(layer_index0, A, A_prime) with H×n×n
    stacks in the notes' layout. Return (I, x): the input of block 0 and the output of the
    last block computed, both n×r (rows are tokens); after the last block of the model the
    final RMSNorm is applied, as for GPT-2's ln_f. With a ``batch``, ``ids`` are B
    sequences packed, each at positions 0 … n_b − 1 (see :func:`forward.forward_batch`)."""
    cfg = llama_config(ck)
    check_shapes(ck, cfg)
    pos = positions(cfg, ck, len(ids)) if batch is None else batch.positions()
    if batch is not None:
        positions(cfg, ck, batch.n)
    x = I = embed(ck, cfg, ids, dtype)  # n×r
    with blas.for_rows(len(ids)):
        for layer in range(last):
            x = block(Block(ck, cfg, layer, dtype), x, pos, record, batch=batch)
    if last == cfg.layers:
        x = rms_norm(x, ck.get("norm.weight", dtype), cfg.eps, cfg.norm_plus_one)
    return I, x


def logits(ck: Checkpoint, cfg: LlamaConfig, x: np.ndarray, dtype: type) -> np.ndarray:
    """Next-token scores of the final-normed rows x (m×r): x Eᵀ, E the output embedding
    (lm_head, or the input embedding when tied)."""
    name = "lm_head.weight" if not cfg.tie and ck.has("lm_head.weight") else "embed_tokens.weight"
    return x @ ck.get(name, dtype).T


def eos_ids(ck: Checkpoint) -> set[int]:
    eos = ck.config.get("eos_token_id")
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


def generate(
    ck: Checkpoint, ids: list[int], n_new: int, dtype: type = np.float32, record: Optional[Record] = None
) -> list[int]:
    """Greedy continuation by up to ``n_new`` tokens (stopping after an end-of-sequence id,
    as transformers' generate does), with a key/value cache: the prompt runs once, then each
    new token costs one position. ``record`` sees each step's attention (H×t×m: the prompt's
    square, then one column per generated token's query). Returns the new ids."""
    cfg = llama_config(ck)
    check_shapes(ck, cfg)
    positions(cfg, ck, len(ids) + n_new)
    new: list[int] = []
    cache, step, stop = Cache(), list(ids), eos_ids(ck)
    final = ck.get("norm.weight", dtype)
    start = 0
    while len(new) < n_new:
        pos = np.arange(start, start + len(step))
        x = embed(ck, cfg, step, dtype)
        with blas.for_rows(len(step)):
            for layer in range(cfg.layers):
                x = block(Block(ck, cfg, layer, dtype), x, pos, record, cache)
        h = rms_norm(x[-1:], final, cfg.eps, cfg.norm_plus_one)
        token = int(np.argmax(logits(ck, cfg, h, dtype)[0]))
        new.append(token)
        if token in stop:
            break
        start, step = start + len(step), [token]
    return new
