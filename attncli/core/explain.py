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

    @property
    def agrees(self) -> bool:
        return self.max_difference <= 1e-9 * max(1.0, float(np.abs(self.b_j).max(initial=0.0)))


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
    A, A_prime, O = result.scores[0, h], result.A_prime[0, h], result.O_heads[h]
    finite = np.isfinite(alpha)
    diffs = [
        np.abs(alpha[finite] - A[finite, j]).max(initial=0.0),
        np.abs(alpha_prime - A_prime[:, j]).max(),
        np.abs(b_j - O[:, j]).max(),
    ]
    return Explanation(result, head, query, q_j, k, v, alpha, alpha_prime, b_j, float(max(diffs)))
