"""Head statistics: how focused each head is and where its attention goes."""

from __future__ import annotations

from typing import Any

import numpy as np

from attncli.core.result import AttentionResult


def column_distributions(A_prime: np.ndarray) -> np.ndarray:
    """Each column as a distribution over keys (A' itself under softmax/sparsemax;
    ReLU weights are divided by their column sum, all-zero columns stay zero)."""
    sums = A_prime.sum(axis=0, keepdims=True)
    return np.divide(A_prime, sums, out=np.zeros_like(A_prime, dtype=float), where=sums > 0)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column: H_j = −Σ_i p[i, j] ln p[i, j] (0 ln 0 = 0)."""
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=0)


def one_head(A_prime: np.ndarray) -> dict[str, float]:
    """Entropy of each query's attention (mean, min), the largest weight, and the mean
    share of a query's attention that goes to itself, the previous token and the first."""
    n = A_prime.shape[0]
    p = column_distributions(A_prime)
    h = entropy(p)
    j = np.arange(n)
    return {
        "entropy_mean": float(h.mean()),
        "entropy_min": float(h.min()),
        "max_weight": float(A_prime.max()),
        "self": float(p[j, j].mean()),
        "previous": float(p[j[1:] - 1, j[1:]].mean()) if n > 1 else 0.0,
        "first": float(p[0, :].mean()),
    }


def head_stats(result: AttentionResult) -> list[dict[str, Any]]:
    """:func:`one_head` for every (layer, head) the result holds; a model's entries say
    which layer."""
    out = []
    for a, l in enumerate(result.layers):
        for b, h in enumerate(result.heads):
            where = {"layer": l, "head": h} if result.is_model else {"head": h}
            out.append({**where, **one_head(result.A_prime[a, b].astype(np.float64))})
    return out


