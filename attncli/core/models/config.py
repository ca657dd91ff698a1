"""The settings of a Llama-family decoder, read once from config.json (or from a GGUF
file's metadata turned into the same keys) into one frozen, typed record.

Families: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text. Both ways
``transformers`` has written rotation settings are read: the old top-level ``rope_theta``
+ ``rope_scaling`` (+ ``rope_local_base_freq`` for Gemma 3) and the newer
``rope_parameters`` (flat, or one entry per layer type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from attncli.errors import AttnError

LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text")
MULTIMODAL = ("gemma3",)  # image + text checkpoints: their language model is read, the vision tower left alone
# where a multimodal checkpoint keeps its language model's tensors: model.language_model.layers…
# (transformers' layout since 4.52), language_model.model.layers… (the Hub's files and what
# save_pretrained writes); its lm_head sits beside either
TEXT_PREFIXES = ("model.language_model.", "language_model.model.", "language_model.", "")
# Gemma3TextConfig's defaults: the Hub's Gemma 3 configs name only what differs from them
GEMMA3_TEXT = dict(
    vocab_size=262208,
    hidden_size=2304,
    intermediate_size=9216,
    num_hidden_layers=26,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=256,
    hidden_activation="gelu_pytorch_tanh",
    max_position_embeddings=131072,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    rope_local_base_freq=10_000.0,
    query_pre_attn_scalar=256,
    sliding_window=4096,
    tie_word_embeddings=True,
)
ROPE_TYPES = ("default", "linear", "llama3")
ACTIVATIONS = ("silu", "swish", "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu")
SLIDING, FULL = "sliding_attention", "full_attention"


@dataclass(frozen=True)
class Rope:
    """Rotary position embedding of one layer kind: inverse frequencies
    θ_k = base^(−2k/q), k = 0 … q/2 − 1, then rescaled by ``kind``."""

    base: float = 10000.0
    kind: str = "default"  # default | linear | llama3
    factor: float = 1.0
    low_freq_factor: float = 1.0  # llama3 only
    high_freq_factor: float = 4.0  # llama3 only
    original_max: int = 8192  # llama3 only
    freq_factors: Optional[tuple[float, ...]] = None  # GGUF's rope_freqs: θ_k / f_k (llama 3.1 baked in)


@dataclass(frozen=True)
class LlamaConfig:
    model_type: str
    r: int  # hidden size
    layers: int
    H: int  # query heads
    G: int  # key/value heads (G divides H)
    q: int  # head_dim: query/key size per head (= v here)
    inter: int  # feed-forward width
    eps: float  # RMSNorm epsilon
    act: str  # silu (SwiGLU) or gelu_pytorch_tanh (GeGLU)
    rope_global: Rope
    rope_local: Rope  # sliding-window layers (Gemma 3 rotates them with their own base)
    sliding: tuple[bool, ...]  # per layer: does it use the sliding window?
    window: Optional[int]  # key i visible to query j only if j − i < window
    scale: float  # 1/√q, or query_pre_attn_scalar^(−1/2) for Gemma 2/3
    softcap: Optional[float]  # Gemma 2: A = c · tanh(A / c)
    tie: bool  # output embedding = input embedding
    max_positions: int
    norm_plus_one: bool  # Gemma: RMSNorm multiplies by (1 + w)
    embed_scale: float  # Gemma: embeddings × √r; 1 otherwise
    qk_norm: bool  # qwen3, gemma3: RMSNorm on each head's q and k before rotation
    sandwich: bool  # gemma2/3: norms after attention and after the feed-forward too

    @property
    def group(self) -> int:
        """How many query heads share one key/value head: head h uses group ⌊h / (H/G)⌋."""
        return self.H // self.G


def text_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """The settings of a multimodal checkpoint's language model (``model_type`` gemma3:
    ``text_config`` nested inside), with Gemma3TextConfig's defaults for what it leaves out
    and the top level's token ids and embedding tying where the text part has none."""
    text = config.get("text_config") or {}
    if not isinstance(text, dict):
        raise AttnError(f"{where}: text_config must be an object of settings, not {text!r}")
    inherited = ("bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings", "_name_or_path")
    top = {k: config[k] for k in inherited if k in config}
    return {**GEMMA3_TEXT, **top, **text, "model_type": "gemma3_text"}


def _whole(config: dict[str, Any], where: str, key: str, default: Optional[int] = None) -> int:
    value = config.get(key, default)
    if value is None:
        raise AttnError(f"{where}: missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AttnError(f"{where}: {key} must be a positive whole number, not {value!r}")
    return value


def _number(config: dict[str, Any], where: str, key: str, default: float) -> float:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise AttnError(f"{where}: {key} must be a positive number, not {value!r}")
    return float(value)


def _rope(spec: object, base: float, where: str, key: str) -> Rope:
    """One rotation from a ``rope_scaling``/``rope_parameters`` entry (None: the default)."""
    if spec is None:
        return Rope(base)
    if not isinstance(spec, dict):
        raise AttnError(f"{where}: {key} must be an object, not {spec!r}")
    kind = spec.get("rope_type", spec.get("type", "default")) or "default"
    if kind not in ROPE_TYPES:
        raise AttnError(f"{where}: {key} type {kind!r} is not supported (attncli reads {', '.join(ROPE_TYPES)})")
    base = _number(spec, where, "rope_theta", base)
    if kind == "default":
        return Rope(base)
    factor = _number(spec, where, "factor", 1.0)
    if kind == "linear":
        return Rope(base, kind, factor)
    return Rope(
        base,
        kind,
        factor,
        _number(spec, where, "low_freq_factor", 1.0),
        _number(spec, where, "high_freq_factor", 4.0),
        int(_number(spec, where, "original_max_position_embeddings", 8192)),
    )


def _ropes(config: dict[str, Any], where: str) -> tuple[Rope, Rope]:
    """(global, local) rotations. Gemma 3 rotates sliding layers with rope_local_base_freq
    (10 000) and no scaling; every other family uses one rotation for all layers."""
    base = _number(config, where, "rope_theta", 10000.0)
    local_base = _number(config, where, "rope_local_base_freq", 10000.0)
    params = config.get("rope_parameters")
    if isinstance(params, dict) and (FULL in params or SLIDING in params):
        full = _rope(params.get(FULL), base, where, "rope_parameters")
        return full, _rope(params.get(SLIDING), local_base, where, "rope_parameters")
    if params is not None:
        glob = _rope(params, base, where, "rope_parameters")
    else:
        glob = _rope(config.get("rope_scaling"), base, where, "rope_scaling")
    if config.get("partial_rotary_factor", 1.0) != 1.0:
        raise AttnError(f"{where}: partial_rotary_factor {config['partial_rotary_factor']!r} is not supported")
    return glob, (Rope(local_base) if config["model_type"] == "gemma3_text" else glob)


def _sliding(config: dict[str, Any], where: str, L: int) -> tuple[bool, ...]:
    """Which layers use the sliding window, as ``transformers`` decides it."""
    kind, window = config["model_type"], config.get("sliding_window")
    types = config.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != L or not set(types) <= {SLIDING, FULL}:
            raise AttnError(f"{where}: layer_types must list {L} entries of {SLIDING!r} or {FULL!r}")
        return tuple(t == SLIDING and window is not None for t in types)
    if window is None or kind in ("llama", "gemma"):
        return (False,) * L
    if kind == "mistral":
        return (True,) * L
    if kind in ("qwen2", "qwen3"):
        first = config.get("max_window_layers", L)
        return tuple(bool(config.get("use_sliding_window")) and i >= first for i in range(L))
    if kind == "gemma2":
        return tuple(bool((i + 1) % 2) for i in range(L))
    pattern = _whole(config, where, "sliding_window_pattern", config.get("_sliding_window_pattern", 6))
    return tuple(bool((i + 1) % pattern) for i in range(L))  # gemma3_text: 5 local, 1 global


def _activation(config: dict[str, Any], where: str) -> str:
    keys = ("hidden_activation", "hidden_act") if config["model_type"] in ("gemma2", "gemma3_text") else ("hidden_act",)
    name = next((config[k] for k in keys if config.get(k) is not None), "silu")
    if name not in ACTIVATIONS:
        raise AttnError(f"{where}: activation {name!r} is not supported (attncli reads {', '.join(ACTIVATIONS)})")
    return name


def read_config(config: dict[str, Any], where: str) -> LlamaConfig:
    """A LlamaConfig from config.json's settings; ``where`` names the file in errors
    (``{folder}/config.json``)."""
    kind = config.get("model_type")
    if kind not in LLAMA_FAMILY:
        raise AttnError(f"{where}: model_type {kind!r} is not a Llama-family decoder ({', '.join(LLAMA_FAMILY)})")
    r = _whole(config, where, "hidden_size")
    H = _whole(config, where, "num_attention_heads")
    G = _whole(config, where, "num_key_value_heads", H)
    L = _whole(config, where, "num_hidden_layers")
    if H % G:
        raise AttnError(f"{where}: num_attention_heads {H} is not a multiple of num_key_value_heads {G}")
    if config.get("head_dim") is None and r % H:
        raise AttnError(f"{where}: hidden_size {r} is not divisible by num_attention_heads {H}")
    q = _whole(config, where, "head_dim", r // H)
    gemma = kind.startswith("gemma")
    scaled = kind in ("gemma2", "gemma3_text")
    scale = _number(config, where, "query_pre_attn_scalar", q) ** -0.5 if scaled else q**-0.5
    window = config.get("sliding_window")
    if window is not None:
        window = _whole(config, where, "sliding_window")
    glob, local = _ropes(config, where)
    cap = config.get("attn_logit_softcapping") if scaled else None
    return LlamaConfig(
        model_type=kind,
        r=r,
        layers=L,
        H=H,
        G=G,
        q=q,
        inter=_whole(config, where, "intermediate_size"),
        eps=_number(config, where, "rms_norm_eps", 1e-6),
        act=_activation(config, where),
        rope_global=glob,
        rope_local=local,
        sliding=_sliding(config, where, L),
        window=window,
        scale=scale,
        softcap=_number(config, where, "attn_logit_softcapping", 50.0) if cap is not None else None,
        tie=bool(config.get("tie_word_embeddings", gemma)),
        max_positions=_whole(config, where, "max_position_embeddings", 2048),
        norm_plus_one=gemma,
        embed_scale=math.sqrt(r) if gemma else 1.0,
        qk_norm=kind in ("qwen3", "gemma3_text"),
        sandwich=scaled,
    )
