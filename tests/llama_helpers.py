"""Tiny Llama-family checkpoints built with transformers' own classes, and a tokenizer
with a BOS token, for tests/test_llama.py and tests/test_gguf.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SENTENCES = [
    "The cat sat on the mat.",
    "A dog ran after the cat in the garden.",
    "Attention is all you need, they said.",
    "Keys down the rows, queries across the columns.",
] * 20

BASE = dict(
    vocab_size=120,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

# name → (config class, extra settings)
FAMILIES = {
    "llama": ("LlamaConfig", {}),
    "llama_mha": ("LlamaConfig", {"num_key_value_heads": 4}),
    "llama_mqa": ("LlamaConfig", {"num_key_value_heads": 1}),
    "llama_tied": ("LlamaConfig", {"tie_word_embeddings": True, "attention_bias": True}),
    "llama3_rope": (
        "LlamaConfig",
        {
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
            "rope_theta": 50.0,
        },
    ),
    "llama_linear": ("LlamaConfig", {"rope_scaling": {"rope_type": "linear", "factor": 3.0}}),
    "mistral": ("MistralConfig", {"sliding_window": 3}),
    "qwen2": ("Qwen2Config", {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1}),
    "qwen3": ("Qwen3Config", {"head_dim": 16}),
    "gemma": ("GemmaConfig", {"head_dim": 16}),
    "gemma2": (
        "Gemma2Config",
        {"head_dim": 16, "sliding_window": 3, "attn_logit_softcapping": 3.0, "query_pre_attn_scalar": 24},
    ),
    "gemma3_text": (
        "Gemma3TextConfig",
        {
            "head_dim": 16,
            "sliding_window": 3,
            "layer_types": ["sliding_attention", "full_attention"],
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "rope_local_base_freq": 100.0,
            "rope_theta": 1000.0,
            "query_pre_attn_scalar": 12,
        },
    ),
}


GGUF_FAMILIES = {
    "qwen2_gguf": ("Qwen2Config", {}),  # llama.cpp keeps no sliding window for qwen2 (nor mistral)
    "gemma2_gguf": (
        "Gemma2Config",
        {"head_dim": 16, "sliding_window": 3, "attn_logit_softcapping": 3.0, "query_pre_attn_scalar": 16},
    ),
    "gemma3_gguf": (
        "Gemma3TextConfig",
        {
            "head_dim": 16,
            "sliding_window": 3,
            "sliding_window_pattern": 2,
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "rope_theta": 1000.0,
            "query_pre_attn_scalar": 16,
        },
    ),
}  # settings a GGUF file can carry: llama.cpp derives the query scale from head_dim and
#   rotates Gemma 3's local layers with base 10 000


def hf_model(name: str, seed: int = 0):
    """A random transformers model of the family ``name`` (eager attention, float32), its
    weights drawn wide enough that attention is far from uniform."""
    import torch
    import transformers

    cls_name, extra = {**FAMILIES, **GGUF_FAMILIES}[name]
    config = getattr(transformers, cls_name)(**{**BASE, **extra})
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_((0.0 if config.model_type.startswith("gemma") else 1.0) + 0.2 * torch.randn_like(p))
            elif "embed" in pname:
                p.normal_(0, 1.0)
            else:
                p.normal_(0, 0.25)
    return model.eval()


def save(model, folder: Path, dtype=None) -> Path:
    """save_pretrained as safetensors (optionally in bf16/fp16), plus a tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    (model.to(dtype) if dtype is not None else model).save_pretrained(folder, safe_serialization=True)
    llama_tokenizer(folder, model.config.get_text_config().vocab_size)
    return folder


def llama_tokenizer(folder: Path, vocab_size: int = 120) -> None:
    """A byte-level BPE tokenizer with <unk>, <s> (BOS, added in front of every text) and </s>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()[:60],
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "add_bos_token": True})
    )


def hf_attention(model, ids: list[int]) -> list[np.ndarray]:
    """transformers' A' of every layer, turned to the notes' layout (H×key×query)."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    return [a[0].float().numpy().transpose(0, 2, 1) for a in out.attentions]


def sentencepiece_tokenizer(folder: Path, vocab_size: int = 120) -> None:
    """A Llama-2-style tokenizer.json (what transformers' LlamaConverter makes of a
    SentencePiece model): BPE with byte fallback over ▁-marked words, <unk> <s> </s> first,
    then the 256 <0xXX> byte pieces, BOS added in front."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=len(specials) + vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tj = json.loads(tok.to_str())
    for t in tj["added_tokens"]:  # byte pieces are vocabulary, not special tokens
        t["special"] = not t["content"].startswith("<0x")
    tj["added_tokens"] = [t for t in tj["added_tokens"] if t["special"]]
    (folder / "tokenizer.json").write_text(json.dumps(tj), encoding="utf-8")


def hf_gemma3_multimodal(seed: int = 0):
    """A random Gemma3ForConditionalGeneration (image + text; a tiny SigLIP vision tower),
    its language model set up as FAMILIES["gemma3_text"] and drawn like hf_model's."""
    import torch
    import transformers

    text = {**BASE, **FAMILIES["gemma3_text"][1], "model_type": "gemma3_text"}
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28)
    config = transformers.Gemma3Config(
        text_config=text,
        vision_config={**vision, "patch_size": 14},
        mm_tokens_per_image=4,
        boi_token_index=117,
        eoi_token_index=118,
        image_token_index=119,
    )
    torch.manual_seed(seed)
    model = transformers.Gemma3ForConditionalGeneration(config)
    model.config._attn_implementation = "eager"
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname and "vision" not in pname:
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed" in pname:
                p.normal_(0, 1.0)
            else:
                p.normal_(0, 0.25)
    return model.eval()
