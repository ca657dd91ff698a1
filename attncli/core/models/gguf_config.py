"""GGUF metadata (``{arch}.embedding_length`` …) turned into the config.json keys
``transformers`` writes, so :func:`attncli.core.models.config.read_config` reads both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attncli.errors import AttnError

ARCHES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3": "gemma3_text",
}

KEYS = {  # GGUF key (after "{arch}.") → config.json key
    "embedding_length": "hidden_size",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "attention.key_length": "head_dim",
    "context_length": "max_position_embeddings",
    "rope.freq_base": "rope_theta",
    "rope.freq_base_swa": "rope_local_base_freq",
    "attention.sliding_window": "sliding_window",
    "attn_logit_softcapping": "attn_logit_softcapping",
}
REQUIRED = ("embedding_length", "block_count", "feed_forward_length", "attention.head_count")


def one(value: Any) -> Any:
    """A per-layer array whose entries agree is one value (llama.cpp writes some that way)."""
    if isinstance(value, list):
        return value[0] if value and all(v == value[0] for v in value) else value
    return value


def config_from_metadata(path: Path, meta: dict[str, Any], tensor_names: set[str]) -> tuple[str, dict[str, Any]]:
    """(llama.cpp architecture, config dict) from a GGUF file's metadata."""
    arch = meta.get("general.architecture")
    if arch not in ARCHES:
        raise AttnError(f"{path}: GGUF architecture {arch!r} is not supported (attncli reads {', '.join(ARCHES)})")
    for key in REQUIRED:
        if f"{arch}.{key}" not in meta:
            raise AttnError(f"{path}: missing metadata {arch}.{key}")
    config: dict[str, Any] = {"model_type": ARCHES[arch]}
    for key, name in KEYS.items():
        if f"{arch}.{key}" in meta:
            config[name] = one(meta[f"{arch}.{key}"])
    config.setdefault("num_key_value_heads", config["num_attention_heads"])
    for name in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim"):
        if isinstance(config.get(name), float) or isinstance(config.get(name), list):
            raise AttnError(f"{path}: metadata for {name} must be one whole number, not {config[name]!r}")
    config["tie_word_embeddings"] = "output.weight" not in tensor_names
    config["hidden_act"] = config["hidden_activation"] = "gelu_pytorch_tanh" if arch.startswith("gemma") else "silu"
    config["eos_token_id"] = meta.get("tokenizer.ggml.eos_token_id")
    config["_name_or_path"] = meta.get("general.name") or path.name
    config.update(rope_scaling(path, meta, arch))
    config.update(gemma_settings(meta, arch, config))
    return arch, config


def rope_scaling(path: Path, meta: dict[str, Any], arch: str) -> dict[str, Any]:
    kind = meta.get(f"{arch}.rope.scaling.type", "none")
    if kind in ("none", None):
        return {}
    if kind != "linear":
        raise AttnError(f"{path}: rope scaling {kind!r} is not supported (attncli reads none, linear)")
    spec = {"rope_type": "linear", "factor": float(meta.get(f"{arch}.rope.scaling.factor", 1.0))}
    return (
        {"rope_parameters": {"full_attention": spec, "sliding_attention": None}}
        if arch == "gemma3"
        else {"rope_scaling": spec}
    )


def gemma_settings(meta: dict[str, Any], arch: str, config: dict[str, Any]) -> dict[str, Any]:
    """Gemma 2/3: which layers slide, and the query scale llama.cpp derives (1/√head_dim, but
    1/√(hidden/heads) for the 27B models: 46 and 62 layers)."""
    if arch not in ("gemma2", "gemma3"):
        return {}
    r, H, L = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
    head_dim = config.get("head_dim", r // H)
    out = {"query_pre_attn_scalar": r // H if L in (46, 62) else head_dim}
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, list) and len(pattern) == L:
        out["layer_types"] = ["sliding_attention" if p else "full_attention" for p in pattern]
    elif arch == "gemma3":
        out["sliding_window_pattern"] = int(pattern) if isinstance(pattern, int) else 6
    return out
