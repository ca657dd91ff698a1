"""The forward pass of BERT-family encoders and GPT-2 decoders in numpy, vectorised
over heads, keeping every layer's attention in the notes' layout.

HF libraries hold attention as P[h, query, key]; the notes write A'[i, j] with keys i
down the rows and queries j across the columns, so A' = Pᵀ per head (each column of
A' sums to 1).

:func:`forward_chunk` runs groups of sequences at once (``survey``): the tokens packed for
the per-token layers, each group padded with hidden keys for attention (:class:`Packing`).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np

from attncli.core import blas
from attncli.core.attention import Packing, Padding, attend_heads, causal_mask, finite
from attncli.core.models import llama
from attncli.core.models.checkpoint import Checkpoint
from attncli.core.models.config import LLAMA_FAMILY
from attncli.core.models.open import load
from attncli.core.models.spec import ROBERTA_LIKE, key_name, spec
from attncli.core.result import AttentionResult, Dims, ModelInfo
from attncli.core.tokenize import Tokens, encode
from attncli.errors import AttnError

Record = Callable[..., None]  # (layer, A, A'[, vectors]): H×n×n each, notes' layout


@dataclass(frozen=True)
class HeadVectors:
    """One layer's per-head q, k, v and output context as the forward pass computed them
    (H×n×d, tokens as rows) and the score scale: what `explain --model` walks through."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    ctx: np.ndarray
    scale: float
    a: np.ndarray  # n×r, the vectors a^i the projections read (after LayerNorm for GPT-2)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """(x − μ) / √(σ² + ε) · w + b along the last axis, x untouched: the operations of the
    expression written out, in its order (the same bits), in one temporary instead of six."""
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = np.square(d).mean(axis=-1, keepdims=True)
    var += eps
    np.sqrt(var, out=var)
    d /= var
    d *= w
    d += b
    return d


def layer_norm_in_place(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """:func:`layer_norm` overwriting x (a batch's temporaries): no n×r temporaries, the
    variance as one row-wise dot product (equal to float32 rounding, not bit for bit)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)
    var /= x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var[:, None]
    x *= w
    x += b
    return x


_erf64 = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """math.erf for float64 (exact); Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7,
    below float32's resolution) for float32:

        t = 1 / (1 + 0.3275911 |x|),  erf(x) = sign(x) (1 − t (a₁ + t (a₂ + t (a₃ + t (a₄ + t a₅)))) e^(−x²))

    evaluated in place in three arrays (the same operations, so the same bits, as
    the expression written out)."""
    if x.dtype == np.float64:
        return _erf64(x).astype(np.float64)
    return _blocks(x, _erf32)


def gelu(x: np.ndarray) -> np.ndarray:
    """½ x (1 + erf(x / √2))."""
    if x.dtype == np.float64:
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return _blocks(x, _gelu32)


BLOCK = 1 << 16  # elements per block: a dozen passes over a block stay in the core's cache
Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _blocks(x: np.ndarray, kernel: Kernel) -> np.ndarray:
    """kernel(x block, out block, three scratch blocks) over blocks of :data:`BLOCK`
    elements: the same operations element by element as on the whole array (the same
    bits), without a dozen whole-array temporaries going through memory."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    scratch = np.empty((3, min(BLOCK, flat.size)), x.dtype)
    for start in range(0, flat.size, BLOCK):
        m = min(BLOCK, flat.size - start)
        kernel(flat[start : start + m], out[start : start + m], *scratch[:, :m])
    return out.reshape(x.shape)


_ERFC = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)  # a₅ … a₁ of erf's polynomial


def _tail(a: np.ndarray, t: np.ndarray, out: np.ndarray, divisor: float) -> None:
    """t = 1 / (1 + p a) and out = t (a₁ + t (a₂ + … + t a₅)) / divisor: the polynomial of
    Abramowitz & Stegun 7.1.26 that both float32 kernels share (divisor 1 keeps erf's bits)."""
    np.multiply(a, 0.3275911, out=t)
    t += 1.0
    np.divide(1.0, t, out=t)
    np.multiply(t, _ERFC[0] / divisor, out=out)
    for c in _ERFC[1:]:
        out += c / divisor
        out *= t


def _erf32(x: np.ndarray, out: np.ndarray, a: np.ndarray, t: np.ndarray, _: np.ndarray) -> None:
    """out = sign(x) (1 − t (a₁ + t (a₂ + t (a₃ + t (a₄ + t a₅)))) e^(−x²)), t = 1 / (1 + p|x|)."""
    np.abs(x, out=a)
    _tail(a, t, out, 1.0)
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    out *= a
    np.subtract(1.0, out, out=out)
    out *= np.sign(x, out=a)


def _gelu32(x: np.ndarray, out: np.ndarray, a: np.ndarray, t: np.ndarray, s: np.ndarray) -> None:
    """out = ½ x (1 + erf(x / √2))."""
    np.divide(x, math.sqrt(2.0), out=s)
    _erf32(s, out, a, t, s)
    out += 1.0
    np.multiply(x, 0.5, out=s)
    out *= s


def gelu_rows(x: np.ndarray) -> np.ndarray:
    """:func:`gelu` for float32 in fewer passes (a batch's feed-forward): the same
    polynomial for 1 − erf, rearranged as ½ x (1 + erf(x/√2)) = max(x, 0) − ½|x| (1 −
    erf(|x|/√2)): no sign pass, no cancellation in 1 + erf for negative x (equal to
    :func:`gelu` to float32 rounding, not bit for bit)."""
    return gelu(x) if x.dtype == np.float64 else _blocks(x, _gelu32_rows)


def _gelu32_rows(x: np.ndarray, out: np.ndarray, a: np.ndarray, t: np.ndarray, s: np.ndarray) -> None:
    """out = max(x, 0) − |z| t P(t) e^(−z²) / √2, z = x / √2, t = 1 / (1 + p|z|)."""
    np.multiply(x, 1 / math.sqrt(2.0), out=s)
    np.abs(s, out=a)
    _tail(a, t, out, math.sqrt(2.0))
    np.multiply(a, a, out=s)
    np.negative(s, out=s)
    np.exp(s, out=s)
    out *= s
    out *= a
    np.maximum(x, 0.0, out=s)
    np.subtract(s, out, out=out)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))  # Python floats keep x's dtype


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "relu": _relu,
    "silu": _silu,
    "swish": _silu,
}


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    scale: float,
    causal: bool,
    *,
    out: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """q, k, v: H×n×d with tokens as rows (the libraries' layout), converted once to the
    notes' layout (columns are tokens) for :func:`attend_heads`. Returns A and A' (H×n×n,
    notes' layout; written into ``out`` when given) and the context H×n×d (rows again)
    for the output projection (a batch: :meth:`Packing.attend`)."""
    Q, K, V = (x.transpose(0, 2, 1) for x in (q, k, v))  # H×d×n
    A, A_prime, O = attend_heads(Q, K, V, scale=scale, mask=causal_mask(q.shape[1]) if causal else None, out=out)
    assert A is not None  # kept: keep_scores is on
    return A, A_prime, O.transpose(0, 2, 1)


def heads(x: np.ndarray, H: int) -> np.ndarray:
    n, r = x.shape
    return x.reshape(n, H, r // H).transpose(1, 0, 2)  # H × n × d


def merge(ctx: np.ndarray) -> np.ndarray:
    H, n, d = ctx.shape
    return ctx.transpose(1, 0, 2).reshape(n, H * d)


@dataclass(frozen=True)
class Layers:
    """A checkpoint's layers by name, in one dtype: ``linear`` for PyTorch's nn.Linear
    (y = x Wᵀ + b), ``conv1d`` for GPT-2's Conv1D (y = x W + b), ``norm`` for LayerNorm."""

    ck: Checkpoint
    dtype: type
    eps: float

    def _pair(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.ck.get(name + ".weight", self.dtype), self.ck.get(name + ".bias", self.dtype)

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        W, b = self._pair(name)
        y = x @ W.T
        y += b  # in place: the same sums as x @ W.T + b, one temporary fewer
        return y

    def fused(self, names: tuple[str, ...], x: np.ndarray) -> np.ndarray:
        """``linear`` of several layers that read the same x (W^q, W^k, W^v) as one
        product, their outputs side by side: the weights stacked and transposed once per
        process and checkpoint (kept on it), one BLAS call instead of several (x W with W
        in input × output order runs ~5% faster than x Wᵀ in OpenBLAS's AVX-512 kernels)."""
        cache: dict[tuple[tuple[str, ...], str], tuple[np.ndarray, np.ndarray]] = self.ck.__dict__.setdefault(
            "_fused", {}
        )
        key = (names, np.dtype(self.dtype).str)
        if key not in cache:
            pairs = [self._pair(name) for name in names]
            W = np.ascontiguousarray(np.concatenate([W for W, _ in pairs]).T)
            cache[key] = (W, np.concatenate([b for _, b in pairs]))
        W, b = cache[key]
        y = x @ W
        y += b
        return y

    def conv1d(self, name: str, x: np.ndarray) -> np.ndarray:
        W, b = self._pair(name)
        return x @ W + b

    def norm(self, name: str, x: np.ndarray) -> np.ndarray:
        return layer_norm(x, *self._pair(name), self.eps)

    def add_norm(self, name: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """norm(y + x) in y's memory (y a temporary of the batch path)."""
        y += x
        return layer_norm_in_place(y, *self._pair(name), self.eps)


@dataclass(frozen=True)
class EncoderNames:
    """Where a post-norm (BERT-style) encoder keeps its tensors and sizes."""

    layer: str = "encoder.layer.{}."
    query: str = "attention.self.query"
    key: str = "attention.self.key"
    value: str = "attention.self.value"
    out: str = "attention.output.dense"
    norm1: str = "attention.output.LayerNorm"
    up: str = "intermediate.dense"
    down: str = "output.dense"
    norm2: str = "output.LayerNorm"


BERT = EncoderNames()
DISTILBERT = EncoderNames(
    layer="transformer.layer.{}.",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    out="attention.out_lin",
    norm1="sa_layer_norm",
    up="ffn.lin1",
    down="ffn.lin2",
    norm2="output_layer_norm",
)


def positions(ck: Checkpoint, ids: list[int]) -> np.ndarray:
    """Position ids as Hugging Face makes them: 0, 1, … ; for RoBERTa and its kin
    padding_idx + 1, + 2, … (a padding token keeps padding_idx)."""
    cfg = spec(ck)
    n = len(ids)
    first = 0
    pos = np.arange(n)
    if cfg.pad_id is not None:
        pad = cfg.pad_id
        first = pad + 1
        real = np.array(ids) != pad
        pos = np.cumsum(real) * real + pad
    if n and pos.max() >= cfg.max_positions:
        raise AttnError(
            f"the text has {n} tokens; {ck.folder} takes at most {cfg.max_positions - first} (max_position_embeddings)"
        )
    return pos


def check_width(ck: Checkpoint, weight: str, axis: int, parts: int = 1) -> None:
    """The config's width checked against the first block's query weight (a config that
    disagrees with its tensors would otherwise give a silently wrong scale 1/√q)."""
    cfg = spec(ck)
    shape = ck.get(weight).shape
    width, heads = key_name(ck, "width"), key_name(ck, "heads")
    if len(shape) != 2 or shape[axis] != parts * cfg.width:
        raise AttnError(f"{ck.folder}: config.json says {width} {cfg.width}, but {weight} has shape {shape}")
    if cfg.width % cfg.heads:
        raise AttnError(f"{ck.folder}/config.json: {width} {cfg.width} is not divisible by {heads} {cfg.heads}")


def _encoder(
    ck: Checkpoint,
    ids: list[int],
    dtype: type,
    last: int,
    record: Record,
    names: EncoderNames = BERT,
    *,
    batch: Optional[Packing] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT and its family: embeddings + LayerNorm, then post-norm blocks (attention, add &
    norm, feed-forward, add & norm). DistilBERT only names things differently."""
    cfg = spec(ck)
    check_width(ck, names.layer.format(0) + names.query + ".weight", axis=0)
    act = ACTIVATIONS[cfg.activation]
    word = ck.get("embeddings.word_embeddings.weight", dtype)
    pos = positions(ck, ids) if batch is None else np.concatenate([positions(ck, part) for part in split(ids, batch)])
    x = word[np.array(ids)] + ck.get("embeddings.position_embeddings.weight", dtype)[pos]
    if ck.has("embeddings.token_type_embeddings.weight"):  # DistilBERT has no token types
        x = x + ck.get("embeddings.token_type_embeddings.weight", dtype)[0]
    w = Layers(ck, dtype, cfg.eps)
    x = w.norm("embeddings.LayerNorm", x)
    if ck.has("embeddings_project.weight"):  # ELECTRA: embedding_size → hidden_size
        x = w.linear("embeddings_project", x)
    I = x
    scale = 1.0 / math.sqrt(cfg.head_size)
    if batch is not None and act is gelu:
        act = gelu_rows
    for layer in range(last):
        p = names.layer.format(layer)
        if batch is None:
            q, k, v = (heads(w.linear(p + m, x), cfg.heads) for m in (names.query, names.key, names.value))
            A, A_prime, ctx = attention(q, k, v, scale, cfg.causal, out=slots(record, layer, q))
            record(layer, A, A_prime, HeadVectors(q, k, v, ctx, scale, x))
            out = merge(ctx)
        else:  # one product for W^q, W^k, W^v; the last block's A' is all a batch needs (Q and K)
            parts = (names.query, names.key) if layer == last - 1 else (names.query, names.key, names.value)
            qkv = w.fused(tuple(p + m for m in parts), x)
            mask = causal_mask(batch.n) if cfg.causal else None
            A_primes, rows = batch.attend_rows(qkv, cfg.heads, len(parts), scale=scale, mask=mask)
            record(layer, None, A_primes)
            if rows is None:
                break
            out = rows
        if batch is None:
            y = w.linear(p + names.out, out)
            y += x  # the residual added in place: x + y, the same sums
            x = w.norm(p + names.norm1, y)
            y = w.linear(p + names.down, act(w.linear(p + names.up, x)))
            y += x
            x = w.norm(p + names.norm2, y)
        else:
            x = w.add_norm(p + names.norm1, w.fused((p + names.out,), out), x)
            x = w.add_norm(p + names.norm2, w.fused((p + names.down,), act(w.fused((p + names.up,), x))), x)
    return I, x


def _gpt2(
    ck: Checkpoint, ids: list[int], dtype: type, last: int, record: Record, *, batch: Optional[Packing] = None
) -> tuple[np.ndarray, np.ndarray]:
    """GPT-2: pre-norm blocks, fused q/k/v (Conv1D: x W + b), causal attention."""
    cfg = spec(ck)
    check_width(ck, "h.0.attn.c_attn.weight", 1, 3)
    act = ACTIVATIONS[cfg.activation]
    n = len(ids) if batch is None else batch.n
    if n > cfg.max_positions:
        raise AttnError(f"the text has {n} tokens; {ck.folder} takes at most {cfg.max_positions} (n_positions)")
    pos = np.arange(n) if batch is None else batch.positions()
    x = ck.get("wte.weight", dtype)[np.array(ids)] + ck.get("wpe.weight", dtype)[pos]
    I = x
    w = Layers(ck, dtype, cfg.eps)
    for layer in range(last):
        p = f"h.{layer}."
        a = w.norm(p + "ln_1", x)
        qkv = w.conv1d(p + "attn.c_attn", a)  # Conv1D: x @ W, W is r × 3r
        q, k, v = (heads(part, cfg.heads) for part in np.split(qkv, 3, axis=-1))
        scale = (1.0 / math.sqrt(cfg.head_size) if cfg.scale_attn_weights else 1.0) / (
            (layer + 1) if cfg.scale_by_layer else 1.0
        )
        if batch is None:
            A, A_prime, ctx = attention(q, k, v, scale, True, out=slots(record, layer, q))
            record(layer, A, A_prime, HeadVectors(q, k, v, ctx, scale, a))
        else:  # the groups' A' (padded stacks); the context packed as rows again
            A_primes, O = batch.attend(*(x.transpose(0, 2, 1) for x in (q, k, v)), scale=scale, mask=causal_mask(n))
            record(layer, None, A_primes)
            ctx = O.transpose(0, 2, 1)
        x = x + w.conv1d(p + "attn.c_proj", merge(ctx))
        x = x + w.conv1d(p + "mlp.c_proj", act(w.conv1d(p + "mlp.c_fc", w.norm(p + "ln_2", x))))
    if last == cfg.layers:
        x = w.norm("ln_f", x)
    return I, x


def split(ids: list[int], batch: Packing) -> Iterator[list[int]]:
    """The packed ids of a batch, sequence by sequence."""
    start = 0
    for m in batch.lengths:
        yield ids[start : start + m]
        start += m


class Forward(Protocol):
    """A family's forward pass: (ids, dtype, blocks to run, record) → (I, x), n×r each;
    with ``batch`` the ids are B sequences packed (see :func:`forward_batch`)."""

    def __call__(
        self,
        ck: Checkpoint,
        ids: list[int],
        dtype: type,
        last: int,
        record: Record,
        *,
        batch: Optional[Packing] = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


FORWARD: dict[str, Forward] = {
    "bert": _encoder,
    **dict.fromkeys(ROBERTA_LIKE, _encoder),
    "electra": _encoder,
    "distilbert": partial(_encoder, names=DISTILBERT),
    "gpt2": _gpt2,
    **dict.fromkeys(LLAMA_FAMILY, llama.forward),
}


def is_causal(ck: Checkpoint) -> bool:
    return spec(ck).causal


def word_embeddings(ck: Checkpoint) -> str:
    if ck.model_type in LLAMA_FAMILY:
        return "embed_tokens.weight"
    return "wte.weight" if ck.model_type == "gpt2" else "embeddings.word_embeddings.weight"


def n_layers(ck: Checkpoint) -> int:
    return spec(ck).layers


def n_heads(ck: Checkpoint) -> int:
    return spec(ck).heads


def slots(record: Record, layer0: int, q: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Where layer ``layer0``'s A and A' go when ``record`` keeps all of them (q: H×n×d)."""
    return record.slots(layer0, q.shape[0], q.shape[1], q.dtype) if isinstance(record, Keep) else None


class Keep:
    """What a forward pass keeps of each layer's attention: the selected layers and heads
    only (a long text through a deep model must not hold every map), plus the per-layer
    mean over heads and the rollout, accumulated as the layers go by. The selected maps
    are copied once, straight into the L×H×n×n stacks :meth:`stacks` returns."""

    def __init__(
        self, layers: list[int], heads: list[int], *, mean: bool = False, rollout: bool = False, vectors: bool = False
    ) -> None:
        self.layers, self.heads, self.mean, self.want_rollout = layers, heads, mean, rollout
        self.want_vectors = vectors  # keep the first selected layer's q, k, v (explain --model)
        self.vectors: Optional[HeadVectors] = None
        self.A: Optional[np.ndarray] = None  # L×H×n×n, allocated at the first selected layer
        self.A_prime: Optional[np.ndarray] = None
        self.seen: set[int] = set()
        self.direct: Optional[tuple[int, int]] = None  # (layer, slot) the attention wrote into itself
        self.means: dict[int, np.ndarray] = {}
        self.R: Optional[np.ndarray] = None

    def __call__(self, layer0: int, A: np.ndarray, A_prime: np.ndarray, vectors: Optional[HeadVectors] = None) -> None:
        """Layer ``layer0`` (0-based) gave A and A' (H×n×n, notes' layout) from ``vectors``."""
        if not finite(A_prime):
            raise NonFinite(layer0 + 1)
        l = layer0 + 1
        if self.want_rollout:
            self.R = rollout_step(self.R, A_prime)
        if l in self.layers:
            pick = np.array(self.heads) - 1
            self._allocate(len(pick), A.shape[1], A.dtype)
            assert self.A is not None and self.A_prime is not None
            for slot in (i for i, x in enumerate(self.layers) if x == l):
                if self.direct != (l, slot):
                    np.take(A, pick, axis=0, out=self.A[slot])
                    np.take(A_prime, pick, axis=0, out=self.A_prime[slot])
            self.seen.add(l)
            if self.mean:
                self.means[l] = A_prime.mean(axis=0)
            if self.want_vectors and self.vectors is None and vectors is not None:
                self.vectors = vectors

    def _allocate(self, H: int, n: int, dtype: np.dtype[Any]) -> None:
        if self.A is None or self.A_prime is None:
            shape = (len(self.layers), H, n, n)
            self.A, self.A_prime = np.empty(shape, dtype), np.empty(shape, dtype)

    def slots(self, layer0: int, H: int, n: int, dtype: np.dtype[Any]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The stacks' places for layer ``layer0``'s A and A' when every head is kept in
        order, so the attention writes them there (no copy); None otherwise."""
        l = layer0 + 1
        if l not in self.layers or self.heads != list(range(1, H + 1)):
            return None
        self._allocate(H, n, dtype)
        assert self.A is not None and self.A_prime is not None
        slot = self.layers.index(l)
        self.direct = (l, slot)
        return self.A[slot], self.A_prime[slot]

    @property
    def last(self) -> int:
        """Blocks to run: up to the last selected layer, or all for the rollout."""
        return max(self.layers)

    def stacks(self) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """A and A' as L×H×n×n in the order the layers were asked for, and the means."""
        missing = [l for l in self.layers if l not in self.seen]
        if missing or self.A is None or self.A_prime is None:
            raise KeyError(missing[0] if missing else None)
        means = np.stack([self.means[l] for l in self.layers]) if self.mean else None
        return self.A, self.A_prime, means


class NonFinite(Exception):
    def __init__(self, layer: int) -> None:
        self.layer = layer


def forward(ck: Checkpoint, tokens: Tokens, keep: Keep, *, text: str = "", float64: bool = False) -> AttentionResult:
    """Run the blocks a selection needs on the tokens' ids; keep what ``keep`` asks for."""
    dtype = np.float64 if float64 else np.float32
    ids = tokens.ids
    if any(i is None for i in ids):
        raise AttnError("a checkpoint needs token ids: the folder's tokenizer.json is used")
    L = n_layers(ck)
    last = L if keep.want_rollout else min(keep.last, L)
    with failures(ck), blas.for_rows(len(ids)):
        I, x = FORWARD[ck.model_type](ck, [int(i) for i in ids if i is not None], dtype, last, keep)
    A, A_prime, means = keep.stacks()
    H, r = n_heads(ck), I.shape[1]
    dims = Dims(r=r, q=r // H, v=r // H, heads=H, n=len(ids), layers=L)
    if ck.model_type in LLAMA_FAMILY:  # head_dim from the config; G key/value heads
        dims = llama.dims(ck, len(ids))
    info = ModelInfo(str(ck.folder), ck.model_type, model_name(ck), ck.config)
    return AttentionResult(
        text=text,
        tokens=tokens,
        dims=dims,
        A=A,
        A_prime=A_prime,
        layers=list(keep.layers),
        heads=list(keep.heads),
        I=I.T,
        O=x.T,
        causal=is_causal(ck),
        checkpoint=info,
        mean_heads=means,
        rollout=keep.R,
        **captured(keep),
    )


@contextmanager
def failures(ck: Checkpoint) -> Iterator[None]:
    """A forward pass's failures as one AttnError each (overflow shows up as non-finite
    attention weights, caught by the recorder)."""
    try:
        with np.errstate(all="ignore"):
            yield
    except NonFinite as bad:
        raise AttnError(
            f"{ck.folder}: the attention weights of layer {bad.layer} are not finite (NaN or overflow):"
            " check the weights and config.json (layer_norm_eps, …); --float64 may help"
        ) from None
    except (ValueError, TypeError, IndexError, ArithmeticError) as exc:  # shapes or config values that do not fit
        raise AttnError(f"{ck.folder}: the tensors do not fit together or with config.json ({exc})") from None


class _Enough(Exception):
    """Raised by :func:`forward_batch`'s recorder after the last layer's attention."""


BatchRecord = Callable[[int, np.ndarray], None]  # (layer, A' B×H×n×n padded)
ChunkRecord = Callable[[int, int, np.ndarray], None]  # (group, layer, A' B×H×n×n padded)


def forward_batch(ck: Checkpoint, ids: list[list[int]], record: BatchRecord) -> None:
    """:func:`forward_chunk` of one group: ``record(layer0, A')``."""
    forward_chunk(ck, [ids], lambda _, layer0, A_prime: record(layer0, A_prime))


def forward_chunk(ck: Checkpoint, groups: list[list[list[int]]], record: ChunkRecord) -> None:
    """Every layer's attention of groups of sequences in one pass (float32): the tokens
    of all groups packed for the per-token layers (one product per layer and weight for
    the whole chunk), each group padded for attention (:class:`Packing`: a padding key
    gets weight 0, a padding query's column is garbage the caller ignores).
    ``record(group, layer0, A')`` gets B×H×n×n per group and layer, notes' layout. Stops
    once the last layer's attention is known: its feed-forward and the final norm change
    no attention weight. One BLAS thread (survey's parallelism is processes), so a chunk
    gives the same bits in this process as in a worker, whatever the library's product
    splitting would do. Each sequence's A' equals :func:`forward`'s to float32 rounding."""
    batch = Packing(tuple(Padding(tuple(len(part) for part in ids)) for ids in groups))
    L = n_layers(ck)

    def keep(layer0: int, A: Optional[np.ndarray], A_primes: list[np.ndarray], vectors: object = None) -> None:
        for A_prime in A_primes:
            if not finite(A_prime):
                raise NonFinite(layer0 + 1)
        for g, A_prime in enumerate(A_primes):
            record(g, layer0, A_prime)
        if layer0 == L - 1:
            raise _Enough

    with failures(ck), blas.at_most(1):  # one BLAS thread, as in survey's workers: the same bits in any process
        try:
            packed = [i for ids in groups for part in ids for i in part]
            FORWARD[ck.model_type](ck, packed, np.float32, L, keep, batch=batch)
        except _Enough:
            pass


def captured(keep: Keep) -> dict[str, Any]:
    """The kept layer's per-head Q, K, V, O (selected heads, H×d×n: the notes' layout)
    and score scale, as result fields; nothing when they were not asked for."""
    if keep.vectors is None:
        return {}
    pick = np.array(keep.heads) - 1
    notes = {
        name: getattr(keep.vectors, part)[pick].transpose(0, 2, 1) for name, part in zip("QKVO", ("q", "k", "v", "ctx"))
    }
    return {
        "Q": notes["Q"],
        "K": notes["K"],
        "V": notes["V"],
        "O_heads": notes["O"],
        "scale": keep.vectors.scale,
        "layer_input": keep.vectors.a.T,
    }


def model_name(ck: Checkpoint) -> str:
    """The checkpoint's own name (config's _name_or_path), else its folder's."""
    name = str(ck.config.get("_name_or_path") or "").rstrip("/")
    return name.rsplit("/", 1)[-1] if name else Path(ck.folder).name


@dataclass(frozen=True)
class Select:
    """Which layers and heads to keep (1-based), and what else to compute."""

    layers: Optional[list[int]] = None  # None: all
    heads: Optional[list[int]] = None
    mean_heads: bool = False
    rollout: bool = False
    special_tokens: bool = True
    float64: bool = False
    max_tokens: int = 512
    vectors: bool = False  # keep q, k, v of the first selected layer (explain --model)
    generate: int = 0  # continue the text greedily by this many tokens first (decoders)


def run_model(
    folder: str | Path,
    text: str,
    select: Optional[Select] = None,
    checkpoint: Optional[Checkpoint] = None,
    **options: Any,
) -> AttentionResult:
    """Tokenise ``text`` with the folder's tokenizer and run the checkpoint. ``options``
    are :class:`Select`'s fields (``layers=[1, 2]``, ``float64=True``, …)."""
    from attncli.core.tokenize import check_text

    select = select or Select(**options)
    ck = checkpoint or load(folder)
    if not text.strip():
        check_text(text, select.max_tokens, Tokens([], []))
    tokens = encode(ck.tokenizer(), text, select.special_tokens, ck.folder)
    check_text(text, select.max_tokens, tokens)
    vocab = llama.shape_of(ck, word_embeddings(ck))[0]  # no table converted just to count its rows
    bad = [i for i in tokens.ids if i is None or not 0 <= i < vocab]
    if bad:
        raise AttnError(f"{folder}: token id {bad[0]} is outside the embedding table ({vocab} rows)")
    if select.generate:
        tokens = continued(ck, tokens, select)
    layers = select.layers or list(range(1, n_layers(ck) + 1))
    heads = select.heads or list(range(1, n_heads(ck) + 1))
    keep = Keep(layers, heads, mean=select.mean_heads, rollout=select.rollout, vectors=select.vectors)
    return forward(ck, tokens, keep, text=text, float64=select.float64)


def continued(ck: Checkpoint, tokens: Tokens, select: Select) -> Tokens:
    """The prompt's tokens and up to ``select.generate`` more, chosen greedily by the model
    (a key/value cache: each new token costs one position). The attention shown is then one
    forward pass over the whole sequence, which equals what the model computed step by step:
    a generated token's column is what the model looked at when it chose the next one."""
    from attncli.core.models.config import LLAMA_FAMILY

    if ck.model_type not in LLAMA_FAMILY:
        raise AttnError(
            f"generate: {ck.model_type} is not a decoder attncli continues (it does for {', '.join(LLAMA_FAMILY)})",
            setting="generate",
        )
    ids = [int(i) for i in tokens.ids if i is not None]
    if len(ids) + select.generate > select.max_tokens:
        raise AttnError(
            f"generate: {len(ids)} tokens and {select.generate} more exceed --max-tokens {select.max_tokens}",
            setting="generate",
        )
    new = llama.generate(ck, ids, select.generate, np.float64 if select.float64 else np.float32)
    tok = ck.tokenizer()
    end = tokens.offsets[-1][1] if tokens.offsets else 0
    return Tokens(
        tokens.tokens + [tok.id_to_token(i) or f"<{i}>" for i in new],
        tokens.offsets + [(end, end)] * len(new),
        tokens.ids + list(new),
        tokens.special + [False] * len(new),
        tokens.generated + [True] * len(new),
    )


def rollout_step(R: Optional[np.ndarray], A_prime: np.ndarray) -> np.ndarray:
    """One layer of attention rollout (Abnar & Zuidema 2020) in the notes' layout.

    Heads averaged, the identity added for the residual path, each query's weights (a
    column here) renormalised to sum to 1; then R_l = R_{l-1} Ã_l, so column j of R says
    how query j's output draws on each input token."""
    n = A_prime.shape[-1]
    At = A_prime.astype(np.float64).mean(axis=0) + np.eye(n)
    At /= At.sum(axis=0, keepdims=True)
    return At if R is None else R @ At


def rollout(A_prime: np.ndarray) -> np.ndarray:
    """Attention rollout through every layer of an L×H×n×n stack."""
    R: Optional[np.ndarray] = None
    for layer in A_prime:
        R = rollout_step(R, layer)
    assert R is not None
    return R
