"""Seeded random embeddings and weights, and positional encodings.

Every random number comes from a generator seeded by a stable hash (BLAKE2b) of a
label and the user's seed, never from Python's ``hash``: the same token string gets
the same vector for a given seed and r in any sentence, on any machine.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Optional

import numpy as np


def stable_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``parts``."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    digest = hashlib.blake2b(text, digest_size=16, person=b"attncli").digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _read_only(*arrays: Optional[np.ndarray]) -> None:
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


@lru_cache(maxsize=2048)  # a batch meets the same words again and again; seeding costs ~30 µs
def token_vector(token: str, r: int, seed: int) -> np.ndarray:
    """The random vector a^i of one token: N(0, 1) entries, r of them (read-only: cached)."""
    v = stable_rng("token", seed, token).standard_normal(r)
    _read_only(v)
    return v


def random_embeddings(tokens: list[str], r: int, seed: int) -> np.ndarray:
    """I = [a^1 … a^n] (r×n) from seeded random vectors, one per token string."""
    vectors = {t: token_vector(t, r, seed) for t in dict.fromkeys(tokens)}
    return np.stack([vectors[t] for t in tokens], axis=1) if tokens else np.zeros((r, 0))


def sinusoidal(r: int, n: int) -> np.ndarray:
    """The original transformer's positional encodings, r×n (column = position).

    PE[2i, pos] = sin(pos / 10000^(2i/r)),  PE[2i+1, pos] = cos(pos / 10000^(2i/r)),
    with positions counted from 0 as in Vaswani et al. (2017).
    """
    pos = np.arange(n, dtype=float)[None, :]  # 1×n
    two_i = np.arange(0, r, 2, dtype=float)[:, None]  # ceil(r/2)×1
    angle = pos / np.power(10000.0, two_i / r)
    P = np.zeros((r, n))
    P[0::2] = np.sin(angle)
    P[1::2] = np.cos(angle[: r // 2])
    return P


def random_weights(r: int, heads: int, q: int, v: int, seed: int) -> dict[str, Optional[np.ndarray]]:
    """W^q, W^k (H×q×r), W^v (H×v×r) and, for H > 1, W^o (r×H·v), from the seed.

    Entries are N(0, 1/r) (and N(0, 1/(H·v)) for W^o) so that scores stay of order 1.
    The arrays are read-only: every sentence of a batch shares them.
    """
    return dict(_weights(r, heads, q, v, seed))


@lru_cache(maxsize=4)
def _weights(r: int, heads: int, q: int, v: int, seed: int) -> tuple[tuple[str, Optional[np.ndarray]], ...]:
    rng = stable_rng("weights", seed, r, heads, q, v)
    Wq = rng.standard_normal((heads, q, r)) / np.sqrt(r)
    Wk = rng.standard_normal((heads, q, r)) / np.sqrt(r)
    Wv = rng.standard_normal((heads, v, r)) / np.sqrt(r)
    Wo = rng.standard_normal((r, heads * v)) / np.sqrt(heads * v) if heads > 1 else None
    _read_only(Wq, Wk, Wv, Wo)
    return (("Wq", Wq), ("Wk", Wk), ("Wv", Wv), ("Wo", Wo))
