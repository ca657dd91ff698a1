"""Self-attention exactly as the lecture notes write it (columns are tokens).

    Q = W^q I      q×n        K = W^k I      q×n        V = W^v I      v×n
    A = Kᵀ Q       n×n        A[i, j] = k^i · q^j   (column j belongs to query j)
    A' = norm(A)   n×n        normalised column by column
    O = V A'       v×n        b^j = Σ_i A'[i, j] v^i

Multi-head: every head h has its own W^q_h, W^k_h, W^v_h and gives O_h (v×n); the
heads are stacked to (H·v)×n and mapped back to r×n by W^o (r×H·v).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from attncli.errors import AttnError

Norm = Callable[[np.ndarray, int], np.ndarray]  # (A, axis) → A'


def softmax(A: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax: subtract the largest score before exp.

    Masked scores are -inf and get weight 0; scores of ±1e30 give no NaN.
    """
    top = np.max(A, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(A - top)
    return e / np.sum(e, axis=axis, keepdims=True)


def relu(A: np.ndarray, axis: int = 0) -> np.ndarray:
    """The notes' other option: A' = max(A, 0), no renormalisation."""
    return np.maximum(A, 0.0)


def sparsemax(A: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sparsemax (Martins & Astudillo 2016): the Euclidean projection of each column
    onto the probability simplex. Columns sum to 1 and small scores get exact zeros.

        τ = (Σ_{k ≤ k(z)} z_(k) − 1) / k(z),  k(z) = max{k : 1 + k z_(k) > Σ_{l ≤ k} z_(l)}
        sparsemax(z) = max(z − τ, 0)
    """
    z = np.moveaxis(np.asarray(A, dtype=float), axis, 0)
    finite = np.isfinite(z)
    # masked (-inf) scores can never be in the support; keep the arithmetic finite
    low = np.where(finite, z, np.inf).min(axis=0, keepdims=True) - 1.0
    z = np.where(finite, z, low)
    z = z - z.max(axis=0, keepdims=True)  # shift-invariant; keeps sums small
    zs = -np.sort(-z, axis=0)  # descending
    k = np.arange(1, z.shape[0] + 1).reshape((-1,) + (1,) * (z.ndim - 1))
    cums = np.cumsum(zs, axis=0)
    support = 1 + k * zs > cums
    kz = support.sum(axis=0, keepdims=True)  # ≥ 1: the largest score is always in
    tau = (np.take_along_axis(cums, kz - 1, axis=0) - 1.0) / kz
    out = np.maximum(z - tau, 0.0)
    return np.moveaxis(out, 0, axis)


NORMS: dict[str, Norm] = {"softmax": softmax, "relu": relu, "sparsemax": sparsemax}


def get_norm(name: str) -> Norm:
    try:
        return NORMS[name]
    except KeyError:
        raise AttnError(f"--norm: unknown normalisation {name!r} (choose {', '.join(NORMS)})") from None


@dataclass(frozen=True)
class Head:
    """One head's matrices, every one in the notes' layout."""

    Q: np.ndarray  # q×n
    K: np.ndarray  # q×n
    V: np.ndarray  # v×n
    A: np.ndarray  # n×n, A[i, j] = k^i · q^j (scaled / masked as asked)
    A_prime: np.ndarray  # n×n, normalised column by column
    O: np.ndarray  # v×n


def causal_mask(n: int) -> np.ndarray:
    """mask[i, j] is True where key i may be seen by query j, i.e. i ≤ j."""
    return np.triu(np.ones((n, n), dtype=bool))


def attend(
    I: np.ndarray,
    Wq: np.ndarray,
    Wk: np.ndarray,
    Wv: np.ndarray,
    *,
    norm: str | Norm = "softmax",
    scale: bool = True,
    causal: bool = False,
    temperature: float = 1.0,
) -> Head:
    """One head of self-attention in the notes' layout (columns are tokens)."""
    Q, K, V = Wq @ I, Wk @ I, Wv @ I  # q×n, q×n, v×n
    n = I.shape[1]
    A, A_prime, O = attend_heads(
        Q[None],
        K[None],
        V[None],
        scale=None if scale else 1.0,
        mask=causal_mask(n) if causal else None,
        norm=norm,
        temperature=temperature,
    )
    return Head(Q, K, V, A[0], A_prime[0], O[0])  # A[i, j] = k^i · q^j; O: v×n


def attend_heads(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    *,
    scale: Optional[float] = None,
    mask: Optional[np.ndarray] = None,
    softcap: Optional[float] = None,
    norm: str | Norm = "softmax",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every head at once, in the notes' layout (columns are tokens).

        Q: H×q×n    K: G×q×n    V: G×v×n     (G divides H: grouped-query attention,
                                              head h uses key/value group ⌊h / (H/G)⌋)
        A[h] = K_gᵀ Q_h · scale   (H×n×n, A[h, i, j] = k^i · q^j)
        A = c · tanh(A / c)       when soft-capped (Gemma 2)
        A[h, i, j] = −∞           where mask[i, j] is False (key i hidden from query j)
        A' = norm(A / T)          column by column (H×n×n)
        O[h] = V_g A'[h]          (H×v×n)

    ``scale`` None means 1/√q. The checkpoint forward passes and the teaching path both
    end here, so softmax, masking and layout change in one place."""
    H, G = Q.shape[0], K.shape[0]
    if H % G:
        raise AttnError(f"{H} query heads cannot share {G} key/value heads evenly")
    if G != H:  # each key/value head serves H/G query heads, in order
        K, V = np.repeat(K, H // G, axis=0), np.repeat(V, H // G, axis=0)
    norm_fn = get_norm(norm) if isinstance(norm, str) else norm
    A = np.matmul(K.transpose(0, 2, 1), Q)  # H×n×n, A[h, i, j] = k^i · q^j
    if scale is None:
        A = A / np.sqrt(Q.shape[1])
    elif scale != 1.0:
        A = A * np.asarray(scale, dtype=A.dtype)
    if softcap:
        A = np.tanh(A / softcap) * softcap
    if mask is not None:
        A = np.where(mask, A, -np.inf)  # key i visible to query j
    A_prime = norm_fn(A / temperature if temperature != 1.0 else A, 1)  # axis 1: each column sums to 1
    return A, A_prime, np.matmul(V, A_prime)  # O: H×v×n


@dataclass(frozen=True)
class MultiHead:
    heads: list[Head]
    O: np.ndarray  # r×n after W^o (or O_1 itself for one head)
    O_concat: Optional[np.ndarray]  # (H·v)×n, only for H > 1


def multi_head(
    I: np.ndarray,
    Wq: np.ndarray,
    Wk: np.ndarray,
    Wv: np.ndarray,
    Wo: Optional[np.ndarray] = None,
    *,
    norm: str | Norm = "softmax",
    scale: bool = True,
    causal: bool = False,
    temperature: float = 1.0,
) -> MultiHead:
    """H heads (Wq, Wk: H×q×r, Wv: H×v×r); heads stacked and mapped by Wo (r×H·v).

    With one head and no Wo, the output is that head's O: the single-head path.
    """
    Q, K, V = np.matmul(Wq, I), np.matmul(Wk, I), np.matmul(Wv, I)  # H×q×n, H×q×n, H×v×n
    n = I.shape[1]
    A, A_prime, O = attend_heads(
        Q,
        K,
        V,
        scale=None if scale else 1.0,
        mask=causal_mask(n) if causal else None,
        norm=norm,
        temperature=temperature,
    )
    heads = [Head(Q[h], K[h], V[h], A[h], A_prime[h], O[h]) for h in range(Q.shape[0])]
    if len(heads) == 1 and Wo is None:
        return MultiHead(heads, heads[0].O, None)
    concat = np.concatenate([h.O for h in heads], axis=0)  # (H·v)×n
    if Wo is None:
        return MultiHead(heads, concat, concat)
    return MultiHead(heads, Wo @ concat, concat)  # r×n
