"""Head statistics: how focused each head is and where its attention goes.

Computed a block of columns at a time, in the maps' own dtype (float32 for a run unless
``--float64``), with sums in float64: no n×n temporary, however long the text."""

from __future__ import annotations

from typing import Any

import numpy as np

from attncli.core.result import AttentionResult

BLOCK = 256  # columns at a time: an n×256 temporary (4 MiB at n = 4,096 in float32)


def column_distributions(A_prime: np.ndarray, *, normalised: bool = False) -> np.ndarray:
    """Each column as a distribution over keys (A' itself under softmax/sparsemax, whose
    columns already sum to 1: ``normalised``; ReLU weights are divided by their column
    sum, all-zero columns stay zero)."""
    if normalised:
        return A_prime
    sums = A_prime.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf / inf (ReLU weights past float32's range): NaN, shown as null
        return np.divide(A_prime, sums, out=np.zeros_like(A_prime), where=sums > 0)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column: H_j = −Σ_i p[i, j] ln p[i, j] (0 ln 0 = 0)."""
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    logs *= p
    h = -logs.sum(axis=0, dtype=np.float64)
    np.maximum(h, 0.0, out=h)  # a one-hot column is 0, not −0.0 (or −1e-9 from rounding)
    h += 0.0
    return h


def one_head(A_prime: np.ndarray, *, normalised: bool = False) -> dict[str, float]:
    """Entropy of each query's attention (mean, min), the largest weight, and the mean
    share of a query's attention that goes to itself, the previous token and the first.
    ``normalised``: the columns already sum to 1 (softmax, sparsemax)."""
    n = A_prime.shape[0]
    h = np.empty(n)
    diag, prev = np.empty(n), np.zeros(n)
    first = np.empty(n)
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        p = column_distributions(A_prime[:, lo:hi], normalised=normalised)
        h[lo:hi] = entropy(p)
        j = np.arange(lo, hi)
        diag[lo:hi] = p[j, j - lo]
        prev[lo:hi] = np.where(j > 0, p[np.maximum(j - 1, 0), j - lo], 0.0)
        first[lo:hi] = p[0]
    return {
        "entropy_mean": float(h.mean()),
        "entropy_min": float(h.min()),
        "max_weight": float(A_prime.max()),
        "self": float(diag.mean()),
        "previous": float(prev[1:].mean()) if n > 1 else 0.0,
        "first": float(first.mean()),
    }


def head_stats(result: AttentionResult) -> list[dict[str, Any]]:
    """:func:`one_head` for every (layer, head) the result holds; a model's entries say
    which layer."""
    normalised = result.norm in ("softmax", "sparsemax")
    out = []
    for a, l in enumerate(result.layers):
        for b, h in enumerate(result.heads):
            where = {"layer": l, "head": h} if result.is_model else {"head": h}
            numbers = one_head(result.A_prime[a, b], normalised=normalised)
            out.append({**where, **{k: x if np.isfinite(x) else None for k, x in numbers.items()}})
    return out
