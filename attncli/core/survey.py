"""What each head does over a corpus: per-query metrics, accumulated per layer and head.

Pure numpy, no CLI. Everything is in the notes' layout: ``A'[l, h, i, j]`` is the weight of
key i for query j (keys down the rows, queries across the columns), so column j is query
j's attention; a column is read as a distribution p_j over keys (divided by its sum, which
is 1 under softmax). Positions are counted from 1 in the docs and from 0 in the code.

For every query j of a sequence of n tokens, with K_j the keys it can see (K_j = n, or
j for a causal model, 1-based), each metric is one number per layer and head:

==============  ==============================================================  ============
metric          formula (per query j)                                           queries
==============  ==============================================================  ============
entropy         H_j = −Σ_i p_ij ln p_ij  (nats; 0 ln 0 = 0)                       all
entropy_norm    H_j / ln K_j  (1 = uniform over what it can see)                 K_j ≥ 2
distance        Σ_i p_ij |i − j|  (tokens)                                       all
max             max_i p_ij                                                       all
self            p_jj                                                             all
previous        p_(j−1)j                                                         j ≥ 2
next            p_(j+1)j  (0 for a causal model)                                 j ≤ n − 1
first           p_1j  (the first token: [CLS], <s>, BOS, or the first word)      j ≥ 2
separator       Σ_{i ∈ S} p_ij, S = special tokens after the first ([SEP], </s>)  S visible
punctuation     Σ_{i ∈ P} p_ij, P = tokens made only of punctuation              all
duplicate       Σ_{i < j, id_i = id_j} p_ij  (earlier copies of token j)          j has one
induction       p_(j−T+1)j on T random tokens repeated twice, j in the 2nd copy  2nd copy
==============  ==============================================================  ============

Each metric's mean and spread are over every counted query of the corpus (the induction
score over the random sequences). The :class:`Acc` accumulator keeps, per metric, the count
of queries and, per layer and head, the sum and the sum of squares in float64; merging two
is adding them. Floating-point addition is not associative, so :class:`Tree` merges chunk
accumulators in a fixed binary tree over the chunks' order: any number of workers, local or
on a cluster, gives the same bits.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Optional, Sequence

import numpy as np

from attncli.core.attention import key_max, key_sums

METRICS: dict[str, str] = {
    "entropy": "entropy of a query's attention, −Σ p ln p (nats)",
    "entropy_norm": "entropy / ln(keys the query can see): 1 is uniform",
    "distance": "mean distance to the keys attended, Σ p_i |i − j| (tokens)",
    "max": "largest weight of a query",
    "self": "share of attention to the token itself",
    "previous": "share to the previous token (previous-token score)",
    "next": "share to the next token",
    "first": "share to the first token ([CLS], <s>, BOS)",
    "separator": "share to separators and end tokens ([SEP], </s>, …)",
    "punctuation": "share to punctuation",
    "duplicate": "share to earlier copies of the same token (duplicate-token score)",
    "induction": "share to the token after the previous copy, on repeated random tokens (induction score)",
}
NAMES = list(METRICS)
INDEX = {name: m for m, name in enumerate(NAMES)}

# label: (metric, threshold): a head gets the label when the metric's mean is ≥ the threshold
LABELS: dict[str, tuple[str, float]] = {
    "previous-token": ("previous", 0.5),
    "next-token": ("next", 0.5),
    "self": ("self", 0.5),
    "sink": ("first", 0.5),
    "separator": ("separator", 0.5),
    "punctuation": ("punctuation", 0.4),
    "duplicate": ("duplicate", 0.4),
    "induction": ("induction", 0.4),
    "broad": ("entropy_norm", 0.85),
}


@dataclass
class Acc:
    """Sums over queries: ``count`` (M,), ``total`` and ``squares`` (L×H×M), float64; plus
    whole-number tallies (sentences, windows, …) and the first long line seen."""

    count: np.ndarray
    total: np.ndarray
    squares: np.ndarray
    tallies: dict[str, int] = field(default_factory=dict)
    first_long: Optional[tuple[str, int, int]] = None  # (where, tokens, window) of the first line cut into windows

    @classmethod
    def zeros(cls, layers: int, heads: int) -> "Acc":
        M = len(NAMES)
        return cls(np.zeros(M, np.int64), np.zeros((layers, heads, M)), np.zeros((layers, heads, M)))

    @property
    def shape(self) -> tuple[int, int]:
        return self.total.shape[0], self.total.shape[1]

    def tally(self, name: str, k: int = 1) -> None:
        self.tallies[name] = self.tallies.get(name, 0) + k

    def merge(self, right: "Acc") -> "Acc":
        """self + right (self holds the earlier part of the corpus)."""
        tallies = dict(self.tallies)
        for k, v in right.tallies.items():
            tallies[k] = tallies.get(k, 0) + v
        return Acc(
            self.count + right.count,
            self.total + right.total,
            self.squares + right.squares,
            tallies,
            self.first_long or right.first_long,
        )

    def mean(self) -> np.ndarray:
        """L×H×M means (NaN where no query was counted)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / np.maximum(self.count, 1), np.nan)

    def std(self) -> np.ndarray:
        """L×H×M population standard deviations: √(Σx²/c − mean²)."""
        mu = self.mean()
        with np.errstate(invalid="ignore"):
            var = self.squares / np.maximum(self.count, 1) - mu * mu
        return np.where(self.count > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)


class Tree:
    """Merge accumulators pushed in corpus order along a fixed binary tree (a binary
    counter: two neighbours of the same level become one of the next level), so the sum
    depends only on the chunks, never on how they were shared out. A group of 2^k chunks
    merged alone is a node of level k: ``push(node, level=k)`` gives the same result."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, Acc]] = []

    def push(self, acc: Acc, level: int = 0) -> None:
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            acc, level = left.merge(acc), level + 1
        self.stack.append((level, acc))

    def total(self, tail: Optional[Acc] = None) -> Optional[Acc]:
        """Everything pushed (then ``tail``), folded from the right."""
        acc = tail
        for _, node in reversed(self.stack):
            acc = node if acc is None else node.merge(acc)
        return acc


def distributions(A_prime: np.ndarray, scratch: bool = False, summed: bool = False) -> np.ndarray:
    """Each column (query) as a distribution over keys, in A's own floating type (float32
    for a checkpoint's float32 pass, float64 otherwise; all-zero columns stay 0). With
    ``scratch`` a floating A' is divided in place (no copy). ``summed``: A' is a softmax's
    output, whose columns sum to 1 already (to rounding): used as it is, not divided again
    by its sums (a survey's checkpoint pass; A' from elsewhere, a ReLU baseline, a
    library's stack, is divided)."""
    dtype = np.result_type(A_prime, np.float32)
    if summed:
        return np.asarray(A_prime, dtype=dtype)
    P = A_prime if scratch and A_prime.dtype == dtype else np.array(A_prime, dtype=dtype)
    s = key_sums(P)[..., None, :]
    s[s == 0] = 1  # A' ≥ 0: a column summing to 0 is all 0 already
    P *= np.reciprocal(s, out=s)
    return P


@lru_cache(maxsize=1 << 16)
def is_punctuation(token: str) -> bool:
    """A token made only of Unicode punctuation once subword marks (##, Ġ, ▁) are removed."""
    text = token.removeprefix("##").lstrip("Ġ▁ ")
    return bool(text) and all(unicodedata.category(c).startswith("P") for c in text)


@dataclass(frozen=True)
class Seq:
    """What the metrics need of a sequence besides A': token strings, special flags, ids."""

    tokens: Sequence[str]
    special: Sequence[bool]
    ids: Sequence[Optional[int]]
    causal: bool = False

    @property
    def n(self) -> int:
        return len(self.tokens)

    def separators(self) -> np.ndarray:
        """S: special tokens after the first position ([SEP], </s>, <|endoftext|>, …)."""
        s = np.asarray(self.special, dtype=bool).copy()
        s[:1] = False
        return s

    def punctuation(self) -> np.ndarray:
        return np.array([is_punctuation(t) and not sp for t, sp in zip(self.tokens, self.special)], dtype=bool)

    def duplicates(self) -> np.ndarray:
        """D[i, j] = 1 when key i < j is an earlier copy of query j (same id, or same string
        without ids; special tokens never count)."""
        keys = np.asarray(self.tokens if None in self.ids else self.ids)
        same = keys[:, None] == keys[None, :]
        plain = ~np.asarray(self.special, dtype=bool)
        return np.triu(same, k=1) & plain[:, None] & plain[None, :]


def entropy(p: np.ndarray) -> np.ndarray:
    """H_j = −Σ_i p_ij ln p_ij over keys (axis −2), 0 ln 0 = 0 (p ≥ 0: the logarithm is
    taken of p + the smallest normal number, finite for a zero weight and multiplied by 0;
    the same as ln p for any weight above ~1e-30)."""
    terms = np.add(p, np.finfo(p.dtype).tiny)
    np.log(terms, out=terms)
    np.multiply(terms, p, out=terms)
    return -key_sums(terms)


_M = {name: INDEX[name] for name in NAMES}


class Group:
    """B sequences whose attention comes as one padded stack B×H×n×n (n the longest;
    padding keys have weight 0, padding queries are never counted): which queries each
    metric counts (M×B×n) and the key sets it sums over. ``induction`` = (start, T) makes
    it a group of induction sequences, which count for the induction score only."""

    def __init__(self, seqs: Sequence[Seq], induction: Optional[tuple[int, int]] = None) -> None:
        self.B, self.n = len(seqs), max(s.n for s in seqs)
        self.induction = induction
        B, n = self.B, self.n
        j = np.arange(n)
        lengths = np.array([s.n for s in seqs])
        real = j[None, :] < lengths[:, None]  # B×n
        self.keep = np.zeros((len(NAMES), B, n), dtype=bool)
        if induction is not None:
            start, T = induction
            self.keep[_M["induction"]][:, start + T : start + 2 * T] = True
            return
        causal = seqs[0].causal
        visible = np.broadcast_to(j + 1, (B, n)) if causal else np.broadcast_to(lengths[:, None], (B, n))
        self.log_visible = np.log(np.maximum(visible, 2)).astype(np.float64)  # ln K_j
        self.keys = np.zeros((B, 2, n), np.float32)  # separators S, punctuation P (1 where a key is in the set)
        self.D = np.zeros((B, n, n), np.float32)
        keep = self.keep
        for b, s in enumerate(seqs):
            m = s.n
            sep = s.separators()
            self.keys[b, 0, :m], self.keys[b, 1, :m] = sep, s.punctuation()
            D = s.duplicates()
            self.D[b, :m, :m] = D
            keep[_M["separator"], b, :m] = np.cumsum(sep) > 0 if causal else sep.any()
            keep[_M["duplicate"], b, :m] = D.any(axis=0)
        for name in ("entropy", "distance", "max", "self", "punctuation"):
            keep[_M[name]] = real
        keep[_M["entropy_norm"]] = real & (visible >= 2)
        keep[_M["previous"]] = keep[_M["first"]] = real & (j >= 1)
        keep[_M["next"]] = j[None, :] <= lengths[:, None] - 2
        self.distance = np.abs(j[:, None] - j[None, :]).astype(np.float32)  # exact: n < 2^24

    def values(self, A_prime: np.ndarray, scratch: bool = False, summed: bool = False) -> np.ndarray:
        """Every metric of every query of one layer (A' B×H×n×n): M×B×H×n, in A's
        floating type (float32 for a checkpoint: the per-query values carry float32's
        precision, their sums over the corpus are taken in float64 by :meth:`add_layer`)."""
        p = distributions(A_prime, scratch, summed)  # scratch: A' is the caller's to overwrite
        B, H, n = p.shape[0], p.shape[1], self.n
        out = np.zeros((len(NAMES), B, H, n), p.dtype)
        if self.induction is not None:
            start, T = self.induction
            j = np.arange(start + T, start + 2 * T)
            out[_M["induction"]][..., j] = p[..., j - T + 1, j]
            return out
        h = out[_M["entropy"]] = entropy(p)
        out[_M["entropy_norm"]] = h / self.log_visible[:, None, :]
        out[_M["distance"]] = np.einsum("bhij,ij->bhj", p, self.distance.astype(p.dtype, copy=False))
        out[_M["max"]] = key_max(p)
        out[_M["self"]] = np.diagonal(p, axis1=-2, axis2=-1)
        out[_M["previous"]][..., 1:] = np.diagonal(p, offset=1, axis1=-2, axis2=-1)  # p[j−1, j]
        out[_M["next"]][..., :-1] = np.diagonal(p, offset=-1, axis1=-2, axis2=-1)  # p[j+1, j]
        out[_M["first"]] = p[..., 0, :]
        shares = np.matmul(self.keys[:, None].astype(p.dtype, copy=False), p)  # B×H×2×n: Σ_{i ∈ S} p_ij, Σ_{i ∈ P} p_ij
        out[_M["separator"]], out[_M["punctuation"]] = shares[:, :, 0], shares[:, :, 1]
        out[_M["duplicate"]] = np.einsum("bhij,bij->bhj", p, self.D.astype(p.dtype, copy=False))
        return out

    @cached_property
    def weights(self) -> np.ndarray:
        """The counted queries as 1.0, the others 0.0 (M×B×1×n)."""
        return self.keep[:, :, None, :].astype(np.float32)

    def add_layer(self, acc: Acc, layer: int, A_prime: np.ndarray, scratch: bool = False, summed: bool = False) -> None:
        """Add layer ``layer``'s counted queries to the sums (the counts: :meth:`add_counts`);
        ``scratch``: A' may be overwritten; ``summed``: A' is a softmax's (see
        :func:`distributions`). The values of every query are finite (the forward passes
        refuse non-finite weights), so multiplying by 0 drops an uncounted one."""
        v = np.multiply(self.values(A_prime, scratch, summed), self.weights, dtype=np.float64)  # M×B×H×n
        acc.total[layer] += v.sum(axis=(1, 3)).T  # summed in float64
        acc.squares[layer] += np.multiply(v, v, out=v).sum(axis=(1, 3)).T

    def add_counts(self, acc: Acc) -> None:
        """Add the number of counted queries per metric (once per group, not per layer)."""
        acc.count += self.keep.sum(axis=(1, 2))


def add_stack(acc: Acc, A_prime: np.ndarray, group: Group) -> None:
    """Add a group's queries to ``acc`` from its A' stack (L×B×H×n×n)."""
    for layer, stack in enumerate(A_prime):
        group.add_layer(acc, layer, stack)
    group.add_counts(acc)


def add_sequence(acc: Acc, A_prime: np.ndarray, seq: Seq) -> None:
    """Add one sequence's queries to ``acc`` (A' is L×H×n×n in the notes' layout)."""
    add_stack(acc, np.asarray(A_prime)[:, None], Group([seq]))


def add_induction(acc: Acc, A_prime: np.ndarray, start: int, T: int) -> None:
    """Add the induction score of a sequence whose tokens start..start+T−1 are repeated at
    start+T..start+2T−1: for each query j of the second copy, p_(j−T+1)j, the weight on the
    token that followed the earlier copy of token j."""
    n = np.shape(A_prime)[-1]
    add_stack(acc, np.asarray(A_prime)[:, None], Group([Seq(["?"] * n, [False] * n, [None] * n)], (start, T)))


@dataclass
class Summary:
    """Means, spreads and labels per layer and head (1-based ``layers``, ``heads``)."""

    mean: np.ndarray  # L×H×M
    std: np.ndarray  # L×H×M
    count: np.ndarray  # M
    layers: list[int]
    heads: list[int]
    tallies: dict[str, int]
    partial: bool = False

    @classmethod
    def of(cls, acc: Acc, partial: bool = False) -> "Summary":
        L, H = acc.shape
        return cls(
            acc.mean(),
            acc.std(),
            acc.count.copy(),
            list(range(1, L + 1)),
            list(range(1, H + 1)),
            dict(acc.tallies),
            partial,
        )

    def value(self, metric: str) -> np.ndarray:
        """L×H means of one metric."""
        return self.mean[..., INDEX[metric]]

    def labels(self, l: int, h: int) -> list[str]:
        """The labels of head h of layer l (0-based here) whose metric passes its threshold."""
        row = self.mean[l, h]
        return [
            name for name, (metric, t) in LABELS.items() if np.isfinite(row[INDEX[metric]]) and row[INDEX[metric]] >= t
        ]

    def strength(self, l: int, h: int) -> float:
        """How clearly a head does something: the largest mean/threshold over the labels."""
        row = self.mean[l, h]
        ratios = [row[INDEX[m]] / t for m, t in LABELS.values() if np.isfinite(row[INDEX[m]])]
        return max(ratios, default=0.0)

    def ranked(self) -> list[tuple[int, int]]:
        """(l, h), 0-based, strongest first; ties in layer, head order."""
        pairs = [(l, h) for l in range(len(self.layers)) for h in range(len(self.heads))]
        return sorted(pairs, key=lambda lh: -self.strength(*lh))
