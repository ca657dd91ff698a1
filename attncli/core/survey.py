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
from typing import Optional, Sequence

import numpy as np

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

    def add(self, metric: str, values: np.ndarray, keep: np.ndarray) -> None:
        """Add the per-query ``values`` (L×H×n) of the queries where ``keep`` (n,) is true."""
        m = INDEX[metric]
        v = values[..., keep]
        self.count[m] += int(keep.sum())
        self.total[..., m] += v.sum(axis=-1)
        self.squares[..., m] += (v * v).sum(axis=-1)

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


def distributions(A_prime: np.ndarray) -> np.ndarray:
    """Each column (query) as a distribution over keys, in float64 (all-zero columns stay 0)."""
    P = np.asarray(A_prime, dtype=np.float64)
    s = P.sum(axis=-2, keepdims=True)
    return np.divide(P, s, out=np.zeros_like(P), where=s > 0)


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

    def visible(self) -> np.ndarray:
        """K_j: the keys query j can see."""
        return np.arange(1, self.n + 1) if self.causal else np.full(self.n, self.n)

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
        keys = [t if i is None else i for t, i in zip(self.tokens, self.ids)]
        same = np.array([[a == b for b in keys] for a in keys], dtype=bool)
        plain = ~np.asarray(self.special, dtype=bool)
        return np.triu(same, k=1) & plain[:, None] & plain[None, :]


def entropy(p: np.ndarray) -> np.ndarray:
    """H_j = −Σ_i p_ij ln p_ij over keys (axis −2), 0 ln 0 = 0."""
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=-2)


def share(p: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Σ_{i ∈ keys} p_ij for every query j: L×H×n."""
    return np.einsum("lhij,i->lhj", p, keys.astype(np.float64))


def add_sequence(acc: Acc, A_prime: np.ndarray, seq: Seq) -> None:
    """Add one sequence's queries to ``acc`` (A' is L×H×n×n in the notes' layout)."""
    p = distributions(A_prime)
    n = seq.n
    L, H = p.shape[:2]
    everyone = np.ones(n, dtype=bool)
    after_first = np.arange(n) >= 1
    K = seq.visible()
    h = entropy(p)
    acc.add("entropy", h, everyone)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc.add("entropy_norm", h / np.log(np.maximum(K, 2)), K >= 2)
    j = np.arange(n)
    acc.add("distance", np.einsum("lhij,ij->lhj", p, np.abs(j[:, None] - j[None, :]).astype(np.float64)), everyone)
    acc.add("max", p.max(axis=-2), everyone)
    acc.add("self", np.diagonal(p, axis1=2, axis2=3), everyone)
    pad = np.zeros((L, H, 1))
    previous = np.concatenate([pad, np.diagonal(p, offset=1, axis1=2, axis2=3)], axis=-1)  # p[j−1, j]
    acc.add("previous", previous, after_first)
    following = np.concatenate([np.diagonal(p, offset=-1, axis1=2, axis2=3), pad], axis=-1)  # p[j+1, j]
    acc.add("next", following, j <= n - 2)
    acc.add("first", p[:, :, 0, :], after_first)
    sep = seq.separators()
    seen = np.cumsum(sep) > 0 if seq.causal else np.full(n, sep.any())
    acc.add("separator", share(p, sep), seen)
    acc.add("punctuation", share(p, seq.punctuation()), everyone)
    D = seq.duplicates()
    acc.add("duplicate", np.einsum("lhij,ij->lhj", p, D.astype(np.float64)), np.asarray(D.any(axis=0)))


def add_induction(acc: Acc, A_prime: np.ndarray, start: int, T: int) -> None:
    """Add the induction score of a sequence whose tokens start..start+T−1 are repeated at
    start+T..start+2T−1: for each query j of the second copy, p_(j−T+1)j, the weight on the
    token that followed the earlier copy of token j."""
    p = distributions(A_prime)
    n = p.shape[-1]
    j = np.arange(start + T, start + 2 * T)
    values = np.zeros(p.shape[:2] + (n,))
    values[..., j] = p[..., j - T + 1, j]
    keep = np.zeros(n, dtype=bool)
    keep[j] = True
    acc.add("induction", values, keep)


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
