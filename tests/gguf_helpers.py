"""Write a tiny Hugging Face folder as a GGUF file the way llama.cpp's convert_hf_to_gguf.py
does: the same tensor names and metadata, q/k rows permuted for the llama architecture,
Gemma norms stored as 1 + w, 2-D weights quantised with gguf.quants, norms kept in F32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ARCH = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
}
NAMES = {
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
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of permute (written out again here, not imported from attncli)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_kquant(rng, rows: int, cols: int, kind: str, std: float = 0.2) -> np.ndarray:
    """Random bytes in ``kind``'s block layout with finite scales d (and dmin), chosen so the
    dequantised weights have about the given spread (they are linear in d and dmin)."""
    import gguf

    q = gguf.GGMLQuantizationType[kind]
    block, size = gguf.GGML_QUANT_SIZES[q]
    scales_at = {"Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}[kind]
    data = rng.integers(0, 256, (rows, cols // block * size), dtype=np.uint8)

    def set_scale(d: float) -> None:
        blocks = data.reshape(-1, size)
        for at in scales_at:
            blocks[:, at : at + 2] = np.frombuffer(np.float16(d).tobytes(), np.uint8)

    set_scale(1e-3)
    spread = gguf.quants.dequantize(data, q).std()
    set_scale(1e-3 * std / spread)
    return data


def gguf_name(name: str, arch: str) -> str:
    name = name.removeprefix("model.")
    top = {
        "embed_tokens.weight": "token_embd.weight",
        "norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if name in top:
        return top[name]
    _, i, rest = name.split(".", 2)
    module, kind = rest.rsplit(".", 1)
    names = dict(NAMES)
    names["post_attention_layernorm"] = "post_attention_norm" if arch in ("gemma2", "gemma3") else "ffn_norm"
    return f"blk.{i}.{names[module]}.{kind}"


def write_gguf(folder: Path, out: Path, qtype: str = "F32", tokenizer: str = "gpt2", raw: dict | None = None) -> Path:
    """``raw``: GGUF name → (bytes as uint8 rows, quantisation name), written as they are
    (for K-quants, which gguf.quants can read but not write)."""
    import gguf

    from attncli.core.models.checkpoint import read_folder

    cfg = json.loads((folder / "config.json").read_text())
    arch = ARCH[cfg["model_type"]]
    H, G = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    w = gguf.GGUFWriter(str(out), arch)
    metadata(w, cfg, arch)
    tokenizer_metadata(w, folder, tokenizer, cfg["vocab_size"])
    q = gguf.GGMLQuantizationType[qtype]
    for name, t in read_folder(folder).items():  # (bf16 widened to float32)
        if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        t = np.asarray(t, dtype=np.float32)
        if arch == "llama" and ".q_proj." in name:
            t = permute(t, H)
        if arch == "llama" and ".k_proj." in name:
            t = permute(t, G)
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            t = t + 1
        if raw and gguf_name(name, arch) in raw:
            data, kind = raw[gguf_name(name, arch)]
            w.add_tensor(gguf_name(name, arch), data, raw_dtype=gguf.GGMLQuantizationType[kind])
        elif t.ndim == 1 or qtype == "F32":
            w.add_tensor(gguf_name(name, arch), t)
        elif qtype == "F16":
            w.add_tensor(gguf_name(name, arch), t.astype(np.float16))
        else:
            w.add_tensor(gguf_name(name, arch), gguf.quants.quantize(t, q), raw_dtype=q)
    rope = cfg.get("rope_parameters") or {}
    if rope.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_factors(cfg, rope))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def llama3_factors(cfg: dict, rope: dict) -> np.ndarray:
    """convert_hf_to_gguf.py's rope_freqs for Llama 3.1: per frequency, 1 (short
    wavelengths), factor (long ones), or the smooth blend between."""
    import math

    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (rope["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def metadata(w, cfg: dict, arch: str) -> None:
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    rope = cfg.get("rope_parameters") or {}
    rope = rope.get("full_attention", rope)
    w.add_rope_freq_base(rope.get("rope_theta", 10000.0))
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    if rope.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope["factor"])
    if arch in ("gemma2", "gemma3"):
        w.add_sliding_window(cfg["sliding_window"])
    if arch == "gemma3":  # llama.cpp assumes 5 local : 1 global without it
        w.add_sliding_window_pattern([t == "sliding_attention" for t in cfg["layer_types"]])
    if arch == "gemma2":
        w.add_attn_logit_softcapping(cfg["attn_logit_softcapping"])
        w.add_final_logit_softcapping(cfg["final_logit_softcapping"])


def tokenizer_metadata(w, folder: Path, kind: str, rows: int = 0) -> None:
    """tokenizer.ggml.* from the folder's tokenizer.json: tokens by id, token types
    (3 = control for special tokens), merges for gpt2, scores for llama."""
    tj = json.loads((folder / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    tokens += [f"[PAD{i}]" for i in range(len(tokens), rows)]  # as llama.cpp pads a short vocabulary
    special = {t["content"] for t in tj["added_tokens"] if t["special"]}
    w.add_tokenizer_model(kind)
    w.add_token_list(tokens)
    types = [3 if t in special else 6 if kind == "llama" and t.startswith("<0x") and len(t) == 6 else 1 for t in tokens]
    types = [5 if t.startswith("[PAD") else ty for t, ty in zip(tokens, types)]  # 5: unused
    w.add_token_types(types)
    if kind == "gpt2":
        w.add_tokenizer_pre("gpt-2")
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]])
    else:
        w.add_token_scores([0.0 if ty != 1 else -float(i) for i, ty in enumerate(types)])
        w.add_unk_token_id(vocab.get("<unk>", 0))
    w.add_bos_token_id(vocab["<s>"])
    w.add_eos_token_id(vocab["</s>"])
    w.add_add_bos_token(True)


import gguf  # noqa: E402  (metadata() names gguf.RopeScalingType)
