"""Self-attention exactly as the lecture notes write it (columns are tokens).

    Q = W^q I      q×n        K = W^k I      q×n        V = W^v I      v×n
    A = Kᵀ Q       n×n        A[i, j] = k^i · q^j   (column j belongs to query j)
    A' = norm(A)   n×n        normalised column by column
    O = V A'       v×n        b^j = Σ_i A'[i, j] v^i

Multi-head: every head h has its own W^q_h, W^k_h, W^v_h and gives O_h (v×n); the
heads are stacked to (H·v)×n and mapped back to r×n by W^o (r×H·v).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

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


def finite(M: np.ndarray) -> bool:
    """No NaN and no ±inf in M, without an array of booleans as large as M: NaN propagates
    through min and max, and an infinity is one of them."""
    return M.size == 0 or bool(np.isfinite(M.min()) and np.isfinite(M.max()))


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
    assert A is not None  # kept: keep_scores is on
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
    keep_scores: bool = True,
    out: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Every head at once, in the notes' layout (columns are tokens).

        Q: H×q×n    K: G×q×n    V: G×v×n     (G divides H: grouped-query attention,
                                              head h uses key/value group ⌊h / (H/G)⌋)
        (or B×H×q×n, B×G×q×n, B×G×v×n: a batch of B padded sequences, see :class:`Padding`)
        A[h] = K_gᵀ Q_h · scale   (H×n×n, A[h, i, j] = k^i · q^j)
        A = c · tanh(A / c)       when soft-capped (Gemma 2)
        A[h, i, j] = −∞           where mask[i, j] is False (key i hidden from query j;
                                  the mask broadcasts: B×1×n×n hides each sequence's padding)
        A' = norm(A / T)          column by column (H×n×n)
        O[h] = V_g A'[h]          (H×v×n)

    ``scale`` None means 1/√q. The checkpoint forward passes and the teaching path both
    end here, so softmax, masking and layout change in one place. Scaling, masking and
    softmax work in place: the scores are the only n×n arrays besides A' (and with
    ``keep_scores=False`` A' is computed in A's place and A comes back as None). ``out``
    (arrays for A and A' of their shape, scores kept) receives them instead of new arrays."""
    H, G = Q.shape[-3], K.shape[-3]
    if H % G:
        raise AttnError(f"{H} query heads cannot share {G} key/value heads evenly")
    if G != H:  # each key/value head serves H/G query heads, in order
        K, V = np.repeat(K, H // G, axis=-3), np.repeat(V, H // G, axis=-3)
    norm_fn = get_norm(norm) if isinstance(norm, str) else norm
    A = scores(Q, K, scale=scale, mask=mask, softcap=softcap, out=None if out is None else out[0])  # H×n×n
    A_prime = out[1] if out is not None else np.empty_like(A) if keep_scores else A
    normalise(A, norm_fn, temperature, out=A_prime)  # A' = norm(A / T): each column sums to 1
    return (A if keep_scores else None), A_prime, values(V, A_prime)  # O: H×v×n


def values(V: np.ndarray, A_prime: np.ndarray) -> np.ndarray:
    """O = V A' (H×v×n), computed as (A'ᵀ Vᵀ)ᵀ: BLAS runs the tall product 3–4× faster
    than the wide one (v ≪ n) on this kind of machine (bench/bench_long.py)."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf weights (ReLU past float32's range) give NaN
        O_T = np.matmul(np.swapaxes(A_prime, -1, -2), np.swapaxes(V, -1, -2))  # H×n×v
    return np.ascontiguousarray(np.swapaxes(O_T, -1, -2))


def scores(
    Q: np.ndarray,
    K: np.ndarray,
    *,
    scale: Optional[float] = None,
    mask: Optional[np.ndarray] = None,
    softcap: Optional[float] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """A = Kᵀ Q scaled, soft-capped and masked, in one H×n×n (or B×H×n×n) array (no other n×n copy;
    ``out`` when given)."""
    K_T = np.ascontiguousarray(np.swapaxes(K, -1, -2))  # H×n×q: BLAS is ~3× faster than on the view
    A = np.matmul(K_T, Q, out=out)  # H×n×n
    if scale is None:
        A /= np.sqrt(np.asarray(Q.shape[-2], dtype=A.dtype))
    elif scale != 1.0:
        A *= np.asarray(scale, dtype=A.dtype)
    if softcap:
        A /= np.asarray(softcap, dtype=A.dtype)
        np.tanh(A, out=A)
        A *= np.asarray(softcap, dtype=A.dtype)
    if mask is not None:
        np.copyto(A, -np.inf, where=~np.asarray(mask, dtype=bool))  # key i hidden from query j
    return A


PARALLEL_NUMBERS = 1 << 23  # scores per map (n ≈ 2,900) from which softmax runs on every core


def normalise(A: np.ndarray, norm_fn: Norm, temperature: float = 1.0, *, out: Optional[np.ndarray] = None) -> None:
    """A' = norm(A / T) column by column, written into ``out`` (over A when None; H×n×n or
    B×H×n×n). Softmax works on the whole stack without an n×n temporary, and map by map
    on every core when the maps are large (numpy's exp and sums use one core, BLAS uses
    them all; each map computed exactly as in the whole stack); other normalisations make
    one n×n array per head at a time (float64 when divided by T, so that a tiny T does not
    overflow float32 before normalising)."""
    dst = A if out is None else out
    maps = list(np.ndindex(A.shape[:-2]))
    cores = min(os.cpu_count() or 1, len(maps))

    def one(h: tuple[int, ...]) -> None:
        with np.errstate(over="ignore"):  # a float32 ReLU weight past 3.4e38 is inf, as in float64 past 1.8e308
            if norm_fn is softmax:
                softmax_in_place(A[h], temperature, out=dst[h])
            elif temperature != 1.0:
                dst[h] = norm_fn(A[h] / np.float64(temperature), 0)
            else:
                dst[h] = norm_fn(A[h], 0)

    if norm_fn is softmax and cores > 1 and A.shape[-1] * A.shape[-2] >= PARALLEL_NUMBERS:
        from concurrent.futures import ThreadPoolExecutor  # here: only long inputs need it

        with ThreadPoolExecutor(cores) as pool:
            list(pool.map(one, maps))
    elif norm_fn is softmax:
        with np.errstate(over="ignore"):
            softmax_in_place(A, temperature, out=dst)
    else:
        for h in maps:
            one(h)


def softmax_in_place(M: np.ndarray, temperature: float = 1.0, *, out: Optional[np.ndarray] = None) -> None:
    """softmax(M / T) down each column of an n×n matrix (or of every matrix of a stack
    …×n×n), written into ``out`` (over M when None) without an n×n temporary. The largest
    score is subtracted before dividing by T (the same softmax), so a tiny T cannot
    overflow float32; the division itself runs in float64."""
    top = np.max(M, axis=-2, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    dst = M if out is None else out
    np.subtract(M, top, out=dst)
    if temperature != 1.0:
        np.divide(dst, np.float64(temperature), out=dst, casting="same_kind")
    np.exp(dst, out=dst)
    dst /= np.sum(dst, axis=-2, keepdims=True)


def key_sums(p: np.ndarray) -> np.ndarray:
    """Σ_i p_ij over the keys (axis −2) as a product with a row of ones: one BLAS call,
    ~6× faster than numpy's reduction across rows for a batch's shapes (n ≈ 50)."""
    return np.matmul(np.ones((1, p.shape[-2]), p.dtype), p)[..., 0, :]


def key_max(p: np.ndarray) -> np.ndarray:
    """max_i p_ij over the keys (axis −2), one row of keys at a time (~2× faster than
    numpy's reduction across rows)."""
    top = p[..., 0, :].copy()
    for i in range(1, p.shape[-2]):
        np.maximum(top, p[..., i, :], out=top)
    return top


def softmax_keys(A: np.ndarray) -> None:
    """softmax down each column of a batch's B×H×n×n scores, in place, where every column
    has a finite score (a real key): the largest score subtracted, the sums taken as a
    product and divided as a reciprocal (equal to :func:`softmax_in_place` to float32
    rounding, 0.8 → 0.4 ms for 10×12×50×50)."""
    A -= key_max(A)[..., None, :]
    np.exp(A, out=A)
    s = key_sums(A)
    A *= np.reciprocal(s, out=s)[..., None, :]


@dataclass(frozen=True)
class MultiHead:
    """Every head's matrices as stacks (H×…), the merged output and the concatenation."""

    Q: np.ndarray  # H×q×n
    K: np.ndarray  # H×q×n
    V: np.ndarray  # H×v×n
    A: Optional[np.ndarray]  # H×n×n (None when the scores were not kept)
    A_prime: np.ndarray  # H×n×n
    O_heads: np.ndarray  # H×v×n
    O: np.ndarray  # r×n after W^o (or O_1 itself for one head)
    O_concat: Optional[np.ndarray]  # (H·v)×n, only for H > 1

    @property
    def heads(self) -> list[Head]:
        """Each head as a :class:`Head` (views of the stacks, no copies)."""
        A = self.A if self.A is not None else self.A_prime
        return [
            Head(self.Q[h], self.K[h], self.V[h], A[h], self.A_prime[h], self.O_heads[h]) for h in range(len(self.Q))
        ]


def project(W: np.ndarray, I: np.ndarray) -> np.ndarray:
    """W I for every head at once (W: H×d×r → H×d×n) as one (H·d)×r product."""
    H, d, r = W.shape
    return (W.reshape(H * d, r) @ I).reshape(H, d, I.shape[1])


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
    keep_scores: bool = True,
) -> MultiHead:
    """H heads (Wq, Wk: H×q×r, Wv: H×v×r); heads stacked and mapped by Wo (r×H·v).

    With one head and no Wo, the output is that head's O: the single-head path.
    """
    H, n = Wq.shape[0], I.shape[1]
    Q, K, V = (project(W, I) for W in (Wq, Wk, Wv))  # H×q×n, H×q×n, H×v×n
    A, A_prime, O = attend_heads(
        Q,
        K,
        V,
        scale=None if scale else 1.0,
        mask=causal_mask(n) if causal else None,
        norm=norm,
        temperature=temperature,
        keep_scores=keep_scores,
    )
    if H == 1 and Wo is None:
        return MultiHead(Q, K, V, A, A_prime, O, O[0], None)
    concat = O.reshape(H * O.shape[1], n)  # (H·v)×n, the heads one under another
    return MultiHead(Q, K, V, A, A_prime, O, concat if Wo is None else Wo @ concat, concat)  # r×n


@dataclass(frozen=True)
class Padding:
    """B sequences of n_1 … n_B tokens run as one batch. The layers that treat each token
    alone (projections, norms, feed-forward) see the T = Σ n_b tokens packed side by side
    (columns …×T in the notes' layout, no padding); attention sees them padded to
    B×…×n (n = max n_b), each sequence's padding keys hidden (A' = 0 there). A padded
    query's column is computed and never read: :meth:`unpad` drops it."""

    lengths: tuple[int, ...]

    @property
    def n(self) -> int:
        return max(self.lengths)

    @property
    def B(self) -> int:
        return len(self.lengths)

    def slots(self) -> np.ndarray:
        """Where each packed token sits among the B·n padded ones."""
        return np.concatenate([b * self.n + np.arange(m) for b, m in enumerate(self.lengths)])

    def positions(self) -> np.ndarray:
        """Each packed token's position in its own sequence: 0 … n_b − 1, sequence after sequence."""
        return np.concatenate([np.arange(m) for m in self.lengths])

    def real(self) -> np.ndarray:
        """B×n: True where token j of sequence b exists."""
        return np.arange(self.n)[None, :] < np.asarray(self.lengths)[:, None]

    def pad(self, X: np.ndarray) -> np.ndarray:
        """…×T (packed columns) → B×…×n, zeros in the padding."""
        rows = np.zeros((self.B * self.n,) + X.shape[:-1], X.dtype)
        rows[self.slots()] = np.moveaxis(X, -1, 0)
        return np.moveaxis(rows.reshape((self.B, self.n) + X.shape[:-1]), 1, -1)

    def unpad(self, Y: np.ndarray) -> np.ndarray:
        """B×…×n → …×T: the real columns of each sequence, packed again."""
        rows = np.moveaxis(Y, -1, 1).reshape((self.B * self.n,) + Y.shape[1:-1])
        return np.moveaxis(rows[self.slots()], 0, -1)

    def mask(self, square: Optional[np.ndarray] = None) -> np.ndarray:
        """B×1×n×n: key i is seen by query j when it is a real token of the sequence and
        ``square[i, j]`` (an n×n mask such as the causal one) allows it; a padding query
        sees every real key, so that its (unread) column is never all hidden."""
        real = self.real()
        keys = real[:, None, :, None]
        if square is None:
            return keys
        return keys & (square[None, None] | ~real[:, None, None, :])

    def attend(
        self, Q: np.ndarray, K: np.ndarray, V: np.ndarray, *, mask: Optional[np.ndarray] = None, **options: Any
    ) -> tuple[None, np.ndarray, np.ndarray]:
        """:func:`attend_heads` on packed Q, K, V (…×T): A' comes back padded (B×H×n×n, the
        scores are not kept), O packed (H×v×T). ``mask`` is the n×n mask every sequence
        shares (causal, sliding window); the padding is added to it."""
        _, A_prime, O = attend_heads(
            self.pad(Q), self.pad(K), self.pad(V), mask=self.mask(mask), keep_scores=False, **options
        )
        return None, A_prime, self.unpad(O)

    def attend_rows(
        self,
        X: np.ndarray,
        heads: int,
        parts: int,
        *,
        scale: float,
        mask: Optional[np.ndarray] = None,
        out: Optional[np.ndarray] = None,
    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Softmax attention on one fused projection's packed rows (T×(parts·H·d), the
        libraries' layout: q, k[, v] of every head side by side), as :func:`attend_heads`
        computes it, with fewer passes over the B×H×n×n scores: the rows padded in one
        copy whose views are K and V (no copy of their own: BLAS reads them with a row
        stride), Q copied once to B×H×d×n with the scale applied there (not to the n²
        scores; the same to float32 rounding), padding keys hidden by slices (a padding
        query sees every real key), O = A'ᵀ Vᵀ written straight into the rows' layout.
        Returns A' (B×H×n×n padded) and the heads' outputs as packed rows T×(H·d) (into
        ``out`` when given), ready for W^o; with ``parts`` = 2 (Q and K only: a batch's
        last block, whose output nobody reads) there is no V, no O and no rows come back.
        ``mask``: an n×n mask every sequence shares (causal), True where a key is seen."""
        B, n = self.B, self.n
        d = X.shape[1] // (parts * heads)
        slots = self.slots()
        rows = np.zeros((B * n, X.shape[1]), X.dtype)
        rows[slots] = X
        split = rows.reshape(B, n, parts, heads, d)
        Q = np.empty((B, heads, d, n), X.dtype)
        np.multiply(split[:, :, 0].transpose(0, 2, 3, 1), np.asarray(scale, X.dtype), out=Q)
        A = np.matmul(split[:, :, 1].transpose(0, 2, 1, 3), Q)  # B×H×n×n: A[b, h, i, j] = k^i · q^j · scale
        for b, m in enumerate(self.lengths):
            A[b, :, m:, :] = -np.inf  # padding keys
        if mask is not None:
            np.copyto(A, -np.inf, where=~np.asarray(mask, dtype=bool))
        with np.errstate(over="ignore", invalid="ignore"):  # overflow gives NaN weights, which the caller refuses
            softmax_keys(A)
        if parts < 3:
            return A, None
        O = np.empty((B, n, heads, d), X.dtype)  # the rows' layout
        with np.errstate(invalid="ignore", over="ignore"):
            np.matmul(np.swapaxes(A, -1, -2), split[:, :, 2].transpose(0, 2, 1, 3), out=O.transpose(0, 2, 1, 3))
        if out is None:
            return A, O.reshape(B * n, heads * d)[slots]
        np.take(O.reshape(B * n, heads * d), slots, axis=0, out=out)
        return A, out


@dataclass(frozen=True)
class Packing:
    """Groups of sequences run as one pass (a survey chunk): every token of every group
    packed side by side for the layers that treat each token alone (one product per
    layer for the whole chunk: bigger products, the weights read once), and each group
    padded on its own for attention (:class:`Padding`). ``lengths`` are all the
    sequences' lengths, group after group; A' comes back as one padded B×H×n×n stack per
    group. The n×n ``mask`` every sequence shares (causal, sliding window) is given for the
    longest sequence; a group uses its top-left corner."""

    groups: tuple[Padding, ...]

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(m for g in self.groups for m in g.lengths)

    @property
    def n(self) -> int:
        return max(g.n for g in self.groups)

    def positions(self) -> np.ndarray:
        """Each packed token's position in its own sequence."""
        return np.concatenate([g.positions() for g in self.groups])

    def _spans(self) -> list[tuple[Padding, slice]]:
        """Each group with its packed tokens' span."""
        out, start = [], 0
        for g in self.groups:
            T = sum(g.lengths)
            out.append((g, slice(start, start + T)))
            start += T
        return out

    def attend(
        self, Q: np.ndarray, K: np.ndarray, V: np.ndarray, *, mask: Optional[np.ndarray] = None, **options: Any
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """:meth:`Padding.attend` group by group on packed Q, K, V (…×T): the groups' A'
        and O packed (…×T)."""
        A_primes: list[np.ndarray] = []
        O = np.empty(V.shape[:-3] + (Q.shape[-3], V.shape[-2], V.shape[-1]), np.result_type(Q, V))
        for g, cols in self._spans():
            square = None if mask is None else mask[: g.n, : g.n]
            _, A_prime, O[..., cols] = g.attend(Q[..., cols], K[..., cols], V[..., cols], mask=square, **options)
            A_primes.append(A_prime)
        return A_primes, O

    def attend_rows(
        self, X: np.ndarray, heads: int, parts: int, *, scale: float, mask: Optional[np.ndarray] = None
    ) -> tuple[list[np.ndarray], Optional[np.ndarray]]:
        """:meth:`Padding.attend_rows` group by group on the chunk's fused projection
        (T×(parts·H·d) rows): the groups' A' and the heads' outputs as packed rows T×(H·d)
        (None for ``parts`` = 2)."""
        A_primes: list[np.ndarray] = []
        out = np.empty((X.shape[0], X.shape[1] // parts), X.dtype) if parts == 3 else None
        for g, rows in self._spans():
            square = None if mask is None else mask[: g.n, : g.n]
            A_prime, _ = g.attend_rows(
                X[rows], heads, parts, scale=scale, mask=square, out=None if out is None else out[rows]
            )
            A_primes.append(A_prime)
        return A_primes, out
