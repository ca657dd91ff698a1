"""Head statistics: how focused each head is and where its attention goes."""

from __future__ import annotations

import numpy as np

from attncli.core.pipeline import Result


def column_distributions(A_prime: np.ndarray) -> np.ndarray:
    """Each column as a distribution over keys (A' itself under softmax/sparsemax;
    ReLU weights are divided by their column sum, all-zero columns stay zero)."""
    sums = A_prime.sum(axis=0, keepdims=True)
    return np.divide(A_prime, sums, out=np.zeros_like(A_prime, dtype=float), where=sums > 0)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column: H_j = −Σ_i p[i, j] ln p[i, j] (0 ln 0 = 0)."""
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=0)


def one_head(A_prime: np.ndarray) -> dict:
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


def head_stats(result: Result) -> list[dict]:
    return [{"head": k + 1, **one_head(h.A_prime)} for k, h in enumerate(result.heads)]


def mean_heads(result: Result) -> np.ndarray:
    """The mean of A' over heads (n×n)."""
    return np.mean([h.A_prime for h in result.heads], axis=0)


def stats_table(stats: list[dict]):
    from rich.table import Table

    table = Table(
        title="head statistics (entropy in nats; shares are means over queries j)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("head", "entropy mean", "entropy min", "max weight", "→ self", "→ previous", "→ first"):
        table.add_column(col, justify="right")
    for s in stats:
        table.add_row(
            str(s["head"]),
            f"{s['entropy_mean']:.3f}",
            f"{s['entropy_min']:.3f}",
            f"{s['max_weight']:.3f}",
            f"{s['self']:.1%}",
            f"{s['previous']:.1%}",
            f"{s['first']:.1%}",
        )
    return table
