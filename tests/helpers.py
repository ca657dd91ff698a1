"""Builders for the small files tests need: vectors in every format, a tokenizer
trained with `tokenizers`, and tiny safetensors checkpoints."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

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


def train_tokenizer(path: Path, sentences=None, vocab_size: int = 200) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    sentences = sentences or ["The cat sat on the mat .", "A dog barked at the cat .",
                              "Birds sing at dawn and the river flows ."]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tok.train_from_iterator(sentences, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.save(str(path))
    return path


def write_embedding_checkpoint(folder: Path, vocab: int, r: int, seed: int = 3,
                               name: str = "bert.embeddings.word_embeddings.weight") -> np.ndarray:
    from safetensors.numpy import save_file

    folder.mkdir(exist_ok=True)
    table = np.random.default_rng(seed).standard_normal((vocab, r)).astype(np.float32)
    save_file({name: table}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": r}))
    return table
