"""The notes' two perspectives on one query, computed independently.

Vector perspective (token by token), for query j of head h:
    Step 1:  q^j = W^q a^j,   k^i = W^k a^i,   v^i = W^v a^i        for every i
    Step 2:  α_{j,i} = q^j · k^i  (÷ √q when scaling),  α'_{j,·} = norm(α_{j,·})
    Step 3:  b^j = Σ_i α'_{j,i} v^i

Matrix perspective: Q = W^q I, K = W^k I, V = W^v I, A = Kᵀ Q, A' = norm(A), O = V A'.
Column j of A is α_{j,·}, column j of A' is α'_{j,·} and column j of O is b^j: the
code checks it and reports the largest difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attncli.core.attention import get_norm
from attncli.core.result import AttentionResult
from attncli.core.words import count
from attncli.errors import AttnError


@dataclass
class Explanation:
    result: AttentionResult
    head: int  # 1-based
    query: int  # 1-based
    q_j: np.ndarray  # q
    k: list[np.ndarray]  # k^i, each q
    v: list[np.ndarray]  # v^i, each v
    alpha: np.ndarray  # n scores α_{j,i} (scaled / masked as the run says)
    alpha_prime: np.ndarray  # n normalised
    b_j: np.ndarray  # v
    max_difference: float  # largest |vector − matrix| over α, α' and b^j
    tolerance: float = 1e-9  # relative; a checkpoint computed in float32 agrees to ~1e-6

    @property
    def agrees(self) -> bool:
        return self.max_difference <= self.tolerance * max(1.0, float(np.abs(self.b_j).max(initial=0.0)))

    @property
    def index(self) -> int:
        """The head's place in the result's stacks (a model keeps only selected heads)."""
        return self.result.heads.index(self.head)


@dataclass(frozen=True)
class Formulas:
    """How the steps are written for a result: a run's settings, or a checkpoint's layer
    (whose projections carry biases b^q, b^k, b^v)."""

    bias: bool  # q^j = W^q a^j + b^q
    scale: str  # " / √q", "" (--no-scale) or " × 0.125"
    norm: str
    temperature: str  # " / T (T = 2)" or ""
    causal: bool
    where: str  # "layer 3 of all-MiniLM-L6-v2" for a checkpoint, else ""

    def proj(self, m: str, a: str) -> str:
        """``W^q a^3`` (+ ``b^q`` for a checkpoint)."""
        return f"W^{m} {a}" + (f" + b^{m}" if self.bias else "")


def formulas(result: AttentionResult) -> Formulas:
    s = result.settings
    if s is not None:
        temp = f" / T (T = {s.temperature:g})" if s.temperature != 1.0 else ""
        return Formulas(False, " / √q" if s.scale else "", s.norm, temp, s.causal, "")
    scale = result.scale if result.scale is not None else 1.0 / np.sqrt(result.dims.q)
    text = " / √q" if np.isclose(scale, 1.0 / np.sqrt(result.dims.q)) else f" × {scale:.4g}"
    name = result.checkpoint.name if result.checkpoint else "the model"
    return Formulas(True, text, "softmax", "", result.causal, f"layer {result.layers[0]} of {name}")


def in_float64(result: AttentionResult) -> AttentionResult:
    """The run again in float64 with its scores, when ``result`` lacks either: the
    agreement check is a proof, not a picture."""
    s = result.settings
    if s is None or (result.A is not None and result.A_prime.dtype == np.float64):
        return result
    from dataclasses import replace

    from attncli.core.pipeline import run

    return run(result.text, replace(s, float64=True, keep_scores=True))


def explain(result: AttentionResult, query: int = 1, head: int = 1) -> Explanation:
    """Recompute query ``query`` of head ``head`` vector by vector (both 1-based) and
    compare with the matrix path of ``result``."""
    n, H = result.n, result.dims.heads
    if not 1 <= head <= H:
        raise AttnError(f"--head {head}: the run has {count(H, 'head')} (count from 1)")
    if not 1 <= query <= n:
        raise AttnError(f"--query {query}: the sentence has {n} tokens (count from 1)")
    if result.is_model:
        return explain_model(result, query, head)
    result = in_float64(result)
    s, W, h, j = result.settings, result.weights, head - 1, query - 1
    Wq, Wk, Wv = (W.get(name) for name in ("Wq", "Wk", "Wv"))
    if s is None or Wq is None or Wk is None or Wv is None or result.O_heads is None:
        raise AttnError("explain needs a run's weights (W^q, W^k, W^v)")
    Wq, Wk, Wv = Wq[h], Wk[h], Wv[h]
    a = [result.I[:, i] for i in range(n)]  # a^1 … a^n
    q_j = Wq @ a[j]
    k = [Wk @ a_i for a_i in a]
    v = [Wv @ a_i for a_i in a]
    alpha = np.array([float(np.dot(q_j, k_i)) for k_i in k])
    if s.scale:
        alpha = alpha / np.sqrt(len(q_j))
    if s.causal:
        alpha = np.array([x if i <= j else -np.inf for i, x in enumerate(alpha)])
    alpha_prime = get_norm(s.norm)(alpha / s.temperature if s.temperature != 1.0 else alpha, 0)
    b_j = sum(alpha_prime[i] * v[i] for i in range(n))
    difference = largest_difference(
        alpha, alpha_prime, b_j, (result.scores[0, h], result.A_prime[0, h], result.O_heads[h]), j
    )
    return Explanation(result, head, query, q_j, k, v, alpha, alpha_prime, b_j, difference)


def largest_difference(
    alpha: np.ndarray, alpha_prime: np.ndarray, b_j: np.ndarray, matrices: tuple[np.ndarray, ...], j: int
) -> float:
    """The largest |vector − matrix| perspective gap: α against column j of A, α' against
    column j of A', b^j against column j of O (masked scores are left out)."""
    A, A_prime, O = matrices
    finite = np.isfinite(alpha)
    return float(
        max(
            np.abs(alpha[finite] - A[finite, j]).max(initial=0.0),
            np.abs(alpha_prime - A_prime[:, j]).max(),
            np.abs(b_j - O[:, j]).max(),
        )
    )


def explain_model(result: AttentionResult, query: int, head: int) -> Explanation:
    """The same steps with a checkpoint's own vectors at one layer: q^j, k^i, v^i as its
    forward pass computed them (biases included), α = q^j · k^i × its scale (masked for
    a decoder), α' = softmax, b^j = Σ α' v^i; checked against its A' and output."""
    if result.Q is None or result.K is None or result.V is None or result.O_heads is None or result.scale is None:
        kind = result.checkpoint.model_type if result.checkpoint else "this"
        raise AttnError(
            f"explain --model walks BERT-family and GPT-2 checkpoints; {kind} checkpoints do not keep"
            " their q, k, v yet (run the model with vectors=True)"
        )
    if head not in result.heads:
        raise AttnError(f"--head {head}: not among the heads computed ({result.heads})")
    b, j, n = result.heads.index(head), query - 1, result.n
    Q, K, V = (np.asarray(M[b], dtype=np.float64) for M in (result.Q, result.K, result.V))
    q_j = Q[:, j]
    k = [K[:, i] for i in range(n)]
    v = [V[:, i] for i in range(n)]
    alpha = np.array([float(np.dot(q_j, k_i)) for k_i in k]) * result.scale
    if result.causal:
        alpha = np.array([x if i <= j else -np.inf for i, x in enumerate(alpha)])
    alpha_prime = get_norm("softmax")(alpha, 0)
    b_j = sum(alpha_prime[i] * v[i] for i in range(n))
    difference = largest_difference(
        alpha, alpha_prime, b_j, (result.scores[0, b], result.A_prime[0, b], result.O_heads[b]), j
    )
    tolerance = 1e-9 if result.A_prime.dtype == np.float64 else 1e-4
    return Explanation(result, head, query, q_j, k, v, alpha, alpha_prime, b_j, difference, tolerance)
