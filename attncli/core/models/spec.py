"""A checkpoint's config.json read once into a typed, frozen :class:`Spec` (as nanoGPT's
GPTConfig): the forward passes read fields, never keys. Each family names its keys
differently (``num_attention_heads``, ``n_head``, ``n_heads``); that mapping lives here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from attncli.core.models.checkpoint import Checkpoint
from attncli.core.models.config import LLAMA_FAMILY
from attncli.errors import AttnError

ACTIVATION_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish")
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")  # positions counted from padding_idx + 1


@dataclass(frozen=True)
class Spec:
    model_type: str
    layers: int  # L
    heads: int  # H
    width: int  # r (hidden size)
    eps: float  # LayerNorm epsilon
    activation: str
    causal: bool  # a decoder: query j sees keys i ≤ j
    max_positions: int
    pad_id: Optional[int] = None  # RoBERTa family: positions start at pad_id + 1
    scale_attn_weights: bool = True  # GPT-2: divide by √q
    scale_by_layer: bool = False  # GPT-2: also by the layer's number

    @property
    def head_size(self) -> int:
        return self.width // self.heads


# where each family keeps each setting in config.json (first key found wins)
KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "gpt2": {
        "layers": ("n_layer", "num_hidden_layers"),
        "heads": ("n_head", "num_attention_heads"),
        "width": ("n_embd", "hidden_size"),
        "eps": ("layer_norm_epsilon",),
        "activation": ("activation_function",),
        "max_positions": ("n_positions", "max_position_embeddings"),
    },
    "distilbert": {
        "layers": ("n_layers", "num_hidden_layers"),
        "heads": ("n_heads", "num_attention_heads"),
        "width": ("dim", "hidden_size"),
        "eps": ("layer_norm_eps",),
        "activation": ("activation",),
        "max_positions": ("max_position_embeddings",),
    },
    "bert": {
        "layers": ("num_hidden_layers",),
        "heads": ("num_attention_heads",),
        "width": ("hidden_size",),
        "eps": ("layer_norm_eps",),
        "activation": ("hidden_act",),
        "max_positions": ("max_position_embeddings",),
    },
}
DEFAULTS: dict[str, Any] = {"eps": 1e-12, "activation": "gelu", "max_positions": 512}
GPT2_DEFAULTS: dict[str, Any] = {"eps": 1e-5, "activation": "gelu_new", "max_positions": 1024}

_cache: dict[int, tuple[Checkpoint, Spec]] = {}


def spec(ck: Checkpoint) -> Spec:
    """The typed config of ``ck``, read on first use and kept for the checkpoint's life."""
    hit = _cache.get(id(ck))
    if hit is not None and hit[0] is ck:
        return hit[1]
    value = read(ck)
    _cache[id(ck)] = (ck, value)
    return value


def _value(ck: Checkpoint, keys: tuple[str, ...], default: Any = None) -> tuple[str, Any]:
    for key in keys:
        if key in ck.config:
            return key, ck.config[key]
    if default is None:
        raise AttnError(f"{ck.folder}/config.json: missing {keys[0]!r}")
    return keys[0], default


def _whole(ck: Checkpoint, keys: tuple[str, ...]) -> int:
    key, value = _value(ck, keys)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AttnError(f"{ck.folder}/config.json: {key} must be a positive whole number, not {value!r}")
    return value


def _number(ck: Checkpoint, keys: tuple[str, ...], default: float) -> float:
    key, value = _value(ck, keys, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AttnError(f"{ck.folder}/config.json: {key} must be a number, not {value!r}")
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite: no size or limit
        raise AttnError(f"{ck.folder}/config.json: {key} must be a finite number, not {value!r}")
    return float(value)


def key_name(ck: Checkpoint, field: str) -> str:
    """The config.json key that holds ``field`` for this family (for messages)."""
    keys = KEYS.get(ck.model_type, KEYS["bert"])[field]
    return next((k for k in keys if k in ck.config), keys[0])


def read(ck: Checkpoint) -> Spec:
    kind = ck.model_type
    keys = KEYS.get(kind, KEYS["bert"])
    defaults = GPT2_DEFAULTS if kind == "gpt2" else DEFAULTS
    act_key, act = _value(ck, keys["activation"], defaults["activation"])
    if act not in ACTIVATION_NAMES:
        raise AttnError(
            f"{ck.folder}/config.json: {act_key} {act!r} is not supported (attncli knows {', '.join(ACTIVATION_NAMES)})"
        )
    eps = _number(ck, keys["eps"], defaults["eps"])
    limit_key, limit = _value(ck, keys["max_positions"], defaults["max_positions"])
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise AttnError(f"{ck.folder}/config.json: {limit_key} must be a positive whole number, not {limit!r}")
    if kind != "gpt2":
        position = ck.config.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise AttnError(
                f"{ck.folder}/config.json: position_embedding_type {position!r} is not supported (absolute only)"
            )
    return Spec(
        model_type=kind,
        layers=_whole(ck, keys["layers"]),
        heads=_whole(ck, keys["heads"]),
        width=_whole(ck, keys["width"]),
        eps=eps,
        activation=act,
        causal=kind == "gpt2" or kind in LLAMA_FAMILY or bool(ck.config.get("is_decoder", False)),
        max_positions=limit,
        pad_id=int(ck.config.get("pad_token_id", 1)) if kind in ROBERTA_LIKE else None,
        scale_attn_weights=bool(ck.config.get("scale_attn_weights", True)),
        scale_by_layer=bool(ck.config.get("scale_attn_by_inverse_layer_idx", False)),
    )
