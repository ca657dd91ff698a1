"""Builders for the small files tests need: vectors in every format, a tokenizer
trained with `tokenizers`, and tiny safetensors checkpoints."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sample_inputs"))
from make_samples import train_tokenizer  # noqa: E402  (one recipe for the samples and the tests)

WORDS = ["the", "cat", "sat", "on", "mat", ".", "a", "dog", "The"]


def table(r: int = 5, seed: int = 7, words=WORDS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # values exact in float32 and in 6-decimal text, so every format holds the same numbers
    return {w: np.round(rng.standard_normal(r), 3).astype(np.float32).astype(np.float64) for w in words}


def write_glove(path: Path, vectors: dict, header: bool = False) -> Path:
    lines = [f"{w} " + " ".join(repr(float(x)) for x in v) for w, v in vectors.items()]
    r = len(next(iter(vectors.values())))
    text = (f"{len(vectors)} {r}\n" if header else "") + "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def write_bin(path: Path, vectors: dict) -> Path:
    r = len(next(iter(vectors.values())))
    with open(path, "wb") as fh:
        fh.write(f"{len(vectors)} {r}\n".encode())
        for w, v in vectors.items():
            fh.write(w.encode() + b" " + struct.pack(f"<{r}f", *v) + b"\n")
    return path


def write_npy(folder: Path, vectors: dict) -> Path:
    folder.mkdir(exist_ok=True)
    np.save(folder / "vectors.npy", np.array(list(vectors.values())))
    (folder / "vocab.txt").write_text("\n".join(vectors) + "\n", encoding="utf-8")
    return folder / "vectors.npy"


def write_npz(path: Path, vectors: dict) -> Path:
    np.savez(path, vocab=np.array(list(vectors)), vectors=np.array(list(vectors.values())))
    return path


def write_embedding_checkpoint(
    folder: Path, vocab: int, r: int, seed: int = 3, name: str = "bert.embeddings.word_embeddings.weight"
) -> np.ndarray:
    from safetensors.numpy import save_file

    folder.mkdir(exist_ok=True)
    table = np.random.default_rng(seed).standard_normal((vocab, r)).astype(np.float32)
    save_file({name: table}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": r}))
    return table


def _rand(rng, *shape, std=0.3):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def write_bert(
    folder: Path,
    vocab: int = 200,
    r: int = 24,
    H: int = 3,
    L: int = 2,
    inter: int = 40,
    seed: int = 0,
    prefix: str = "",
    act: str = "gelu",
) -> dict:
    """A tiny random BERT checkpoint in Hugging Face's layout (no transformers needed)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    t = {
        "embeddings.word_embeddings.weight": _rand(rng, vocab, r, std=1.0),
        "embeddings.position_embeddings.weight": _rand(rng, 64, r),
        "embeddings.token_type_embeddings.weight": _rand(rng, 2, r),
        "embeddings.LayerNorm.weight": 1 + _rand(rng, r, std=0.1),
        "embeddings.LayerNorm.bias": _rand(rng, r, std=0.1),
    }
    for l in range(L):
        p = f"encoder.layer.{l}."
        for m in ("query", "key", "value"):
            t[p + f"attention.self.{m}.weight"] = _rand(rng, r, r, std=0.5)
            t[p + f"attention.self.{m}.bias"] = _rand(rng, r, std=0.1)
        t[p + "attention.output.dense.weight"], t[p + "attention.output.dense.bias"] = _rand(rng, r, r), _rand(rng, r)
        t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"] = (
            1 + _rand(rng, r),
            _rand(rng, r),
        )
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = _rand(rng, inter, r), _rand(rng, inter)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = _rand(rng, r, inter), _rand(rng, r)
        t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"] = 1 + _rand(rng, r), _rand(rng, r)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({prefix + k: v for k, v in t.items()}, str(folder / "model.safetensors"))
    cfg = {
        "model_type": "bert",
        "hidden_size": r,
        "num_attention_heads": H,
        "num_hidden_layers": L,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "hidden_act": act,
        "vocab_size": vocab,
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder / "tokenizer.json", vocab_size=vocab)
    return t


def write_gpt2(
    folder: Path, vocab: int = 200, r: int = 24, H: int = 4, L: int = 2, seed: int = 1, prefix: str = ""
) -> dict:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    t = {
        "wte.weight": _rand(rng, vocab, r, std=1.0),
        "wpe.weight": _rand(rng, 64, r),
        "ln_f.weight": 1 + _rand(rng, r),
        "ln_f.bias": _rand(rng, r),
    }
    for l in range(L):
        p = f"h.{l}."
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = 1 + _rand(rng, r), _rand(rng, r)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = _rand(rng, r, 3 * r, std=0.5), _rand(rng, 3 * r)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = _rand(rng, r, r), _rand(rng, r)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = 1 + _rand(rng, r), _rand(rng, r)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = _rand(rng, r, 4 * r), _rand(rng, 4 * r)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = _rand(rng, 4 * r, r), _rand(rng, r)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({prefix + k: v for k, v in t.items()}, str(folder / "model.safetensors"))
    cfg = {
        "model_type": "gpt2",
        "n_embd": r,
        "n_head": H,
        "n_layer": L,
        "n_positions": 64,
        "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new",
        "vocab_size": vocab,
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder / "tokenizer.json", vocab_size=vocab)
    return t


def shard(folder: Path, parts: int = 3) -> None:
    """Split a folder's model.safetensors into shards with an index, as save_pretrained does
    for large models, and remove the single file."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    weight_map = {}
    for k in range(parts):
        shard_name = f"model-{k + 1:05d}-of-{parts:05d}.safetensors"
        chunk = names[k::parts]
        save_file({n: tensors[n] for n in chunk}, str(folder / shard_name))
        weight_map.update({n: shard_name for n in chunk})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "model.safetensors").unlink()


def slow_bert_files(folder: Path, config: dict | None = None) -> None:
    """Replace a folder's tokenizer.json by what a slow BertTokenizer saves: vocab.txt (one
    token per line, by id) and tokenizer_config.json."""
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab()
    (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config or {"do_lower_case": True}))
    (folder / "tokenizer.json").unlink()


def gpt2_tokenizer(
    folder: Path, sentences: list[str], vocab_size: int = 200, special: tuple[str, ...] = ("<|endoftext|>",)
) -> None:
    """A GPT-2 style byte-level BPE trained with `tokenizers`: tokenizer.json, plus the
    vocab.json and merges.txt a slow GPT2Tokenizer reads."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sentences, trainer)
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))
