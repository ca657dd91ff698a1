"""AttentionResults built by hand for the view tests: the real attention function on seeded
random inputs, or column-stochastic stacks with a known largest weight."""

from __future__ import annotations

from typing import Optional

import numpy as np

from attncli.core.attention import multi_head
from attncli.core.result import AttentionResult, Dims, ModelInfo
from attncli.core.tokenize import Tokens


def tokens_of(words: list[str], special: Optional[list[bool]] = None) -> Tokens:
    offsets, at = [], 0
    for w in words:
        offsets.append((at, at + len(w)))
        at += len(w) + 1
    return Tokens(list(words), offsets, special=list(special or [False] * len(words)))


def run_result(words: list[str], heads: int = 2, seed: int = 0, special=None, causal: bool = False) -> AttentionResult:
    """A run: one layer, ``heads`` heads of multi_head on random vectors."""
    from attncli.core.settings import Settings

    rng = np.random.default_rng(seed)
    n, r, q = len(words), 8, 4
    I = rng.normal(size=(r, n))
    Wq, Wk, Wv = (rng.normal(scale=1.5, size=(heads, q, r)) for _ in range(3))
    mh = multi_head(I, Wq, Wk, Wv, causal=causal)
    A = np.stack([h.A for h in mh.heads])[None]
    Ap = np.stack([h.A_prime for h in mh.heads])[None]
    return AttentionResult(
        text=" ".join(words),
        tokens=tokens_of(words, special),
        dims=Dims(r=r, q=q, v=q, heads=heads, n=n),
        A=A,
        A_prime=Ap,
        layers=[1],
        heads=list(range(1, heads + 1)),
        I=I,
        O=mh.O,
        causal=causal,
        settings=Settings(dim=r, heads=heads, seed=seed, causal=causal),
    )


def stochastic(rng: np.random.Generator, L: int, H: int, n: int, sharp: float = 3.0) -> np.ndarray:
    """L×H×n×n, each column a softmax of random logits (sharper with ``sharp``)."""
    logits = rng.normal(scale=sharp, size=(L, H, n, n))
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return e / e.sum(axis=2, keepdims=True)


def model_result(words: list[str], layers: int = 3, heads: int = 4, seed: int = 0, special=None) -> AttentionResult:
    """A model: several layers, random column-stochastic stacks, a made-up checkpoint."""
    rng = np.random.default_rng(seed)
    n = len(words)
    Ap = stochastic(rng, layers, heads, n)
    return AttentionResult(
        text=" ".join(words),
        tokens=tokens_of(words, special),
        dims=Dims(r=16, q=4, v=4, heads=heads, n=n, layers=layers),
        A=np.log(Ap),
        A_prime=Ap,
        layers=list(range(1, layers + 1)),
        heads=list(range(1, heads + 1)),
        I=np.zeros((16, n)),
        O=np.zeros((16, n)),
        checkpoint=ModelInfo(path="/models/tiny-bert", model_type="bert", name="tiny-bert", config={"hidden_size": 16}),
    )
