"""Make the small files in sample_inputs/ (run: python sample_inputs/make_samples.py).

Where the numbers come from: every vector and weight is drawn from numpy's PCG64
generator seeded with 2024, N(0, 1), rounded to 4 decimals (then stored as float32 in
the word2vec .bin). They are not trained: they exist to show and test the loaders.
The tokenizer is a WordPiece model trained with the `tokenizers` library on SENTENCES
(training is not deterministic: a rerun may number the same vocabulary differently).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENTENCES = [
    "The cat sat on the mat .",
    "A dog barked at the cat .",
    "The quick brown fox jumps over the lazy dog .",
    "Birds sing at dawn and the river flows .",
]
R = 6


def vocabulary() -> list[str]:
    words = []
    for s in SENTENCES:
        for w in s.lower().split():
            if w not in words:
                words.append(w)
    return words


def main() -> None:
    rng = np.random.default_rng(2024)
    words = vocabulary()
    vectors = np.round(rng.standard_normal((len(words), R)), 4)
    rows = [f"{w} " + " ".join(f"{x:.4f}" for x in v) for w, v in zip(words, vectors)]
    (HERE / "glove.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (HERE / "vectors.vec").write_text(f"{len(words)} {R}\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with open(HERE / "vectors.bin", "wb") as fh:
        fh.write(f"{len(words)} {R}\n".encode())
        for w, v in zip(words, vectors):
            fh.write(w.encode() + b" " + struct.pack(f"<{R}f", *v) + b"\n")
    npy = HERE / "npy"
    npy.mkdir(exist_ok=True)
    np.save(npy / "vectors.npy", vectors)
    (npy / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    np.savez(HERE / "vectors.npz", vocab=np.array(words), vectors=vectors)
    H, q, v = 2, 3, 3
    np.savez(
        HERE / "weights.npz",
        Wq=np.round(rng.standard_normal((H, q, R)) / np.sqrt(R), 4),
        Wk=np.round(rng.standard_normal((H, q, R)) / np.sqrt(R), 4),
        Wv=np.round(rng.standard_normal((H, v, R)) / np.sqrt(R), 4),
        Wo=np.round(rng.standard_normal((R, H * v)) / np.sqrt(H * v), 4),
    )
    train_tokenizer(HERE / "tokenizer.json")


def train_tokenizer(path: Path, sentences: list[str] = SENTENCES, vocab_size: int = 120) -> Path:
    """A small BERT-style WordPiece tokenizer ([CLS] … [SEP]) trained on ``sentences``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False
    )
    tok.train_from_iterator(sentences, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.save(str(path))
    return path


if __name__ == "__main__":
    main()
