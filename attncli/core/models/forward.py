"""The forward pass of BERT-family encoders and GPT-2 decoders in numpy, vectorised
over heads, keeping every layer's attention in the notes' layout.

HF libraries hold attention as P[h, query, key]; the notes write A'[i, j] with keys i
down the rows and queries j across the columns, so A' = Pᵀ per head (each column of
A' sums to 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import numpy as np

from attncli.errors import AttnError
from attncli.core.tokenize import Tokens, tokenize
from attncli.core.models.checkpoint import Checkpoint, load
from attncli.core.models.config import LLAMA_FAMILY


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf64 = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """math.erf for float64 (exact); Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7,
    below float32's resolution) for float32."""
    if x.dtype == np.float64:
        return _erf64(x).astype(np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (s * (1.0 - poly * np.exp(-a * a))).astype(x.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))  # Python floats keep x's dtype


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "relu": lambda x: np.maximum(x, 0),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
}


def activation(ck: Checkpoint, *keys: str):
    name = ck.cfg(*keys, default="gelu")
    if name not in ACTIVATIONS:
        raise AttnError(f"{ck.folder}/config.json: activation {name!r} is not supported")
    return ACTIVATIONS[name]


def attention(q: np.ndarray, k: np.ndarray, scale: float, causal: bool):
    """q, k: H×n×d. Returns the scores and weights in the notes' layout (H×key×query)."""
    S = q @ k.transpose(0, 2, 1) * scale  # H × query × key (the libraries' layout)
    if causal:
        n = S.shape[-1]
        S = np.where(np.tril(np.ones((n, n), dtype=bool)), S, -np.inf)  # key ≤ query
    top = S.max(axis=-1, keepdims=True)
    P = np.exp(S - top)
    P /= P.sum(axis=-1, keepdims=True)
    return S.transpose(0, 2, 1), P  # A in the notes' layout; P still [query, key] for the values


def heads(x: np.ndarray, H: int) -> np.ndarray:
    n, r = x.shape
    return x.reshape(n, H, r // H).transpose(1, 0, 2)  # H × n × d


def merge(ctx: np.ndarray) -> np.ndarray:
    H, n, d = ctx.shape
    return ctx.transpose(1, 0, 2).reshape(n, H * d)


@dataclass
class ModelResult:
    text: str
    tokens: Tokens
    model_type: str
    folder: str
    dims: dict  # r, q, v, heads, layers, n
    I: np.ndarray  # r×n, the input of the first block
    O: np.ndarray  # r×n, the output of the last block computed
    A: np.ndarray  # L×H×n×n scores, notes' layout (masked: -inf)
    A_prime: np.ndarray  # L×H×n×n weights, notes' layout: each column sums to 1
    config: dict = field(default_factory=dict)
    causal: bool = False  # a decoder: each query sees only keys up to itself

    @property
    def n(self) -> int:
        return len(self.tokens)


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
        return x @ W.T + b

    def conv1d(self, name: str, x: np.ndarray) -> np.ndarray:
        W, b = self._pair(name)
        return x @ W + b

    def norm(self, name: str, x: np.ndarray) -> np.ndarray:
        return layer_norm(x, *self._pair(name), self.eps)


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
    heads: str = "num_attention_heads"
    width: str = "hidden_size"
    act: str = "hidden_act"


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
    heads="n_heads",
    width="dim",
    act="activation",
)
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")  # positions counted from padding_idx + 1


def positions(ck: Checkpoint, ids: list[int]) -> np.ndarray:
    """Position ids as Hugging Face makes them: 0, 1, … ; for RoBERTa and its kin
    padding_idx + 1, + 2, … (a padding token keeps padding_idx)."""
    n = len(ids)
    first = 0
    pos = np.arange(n)
    if ck.model_type in ROBERTA_LIKE:
        pad = int(ck.config.get("pad_token_id", 1))
        first = pad + 1
        real = np.array(ids) != pad
        pos = np.cumsum(real) * real + pad
    limit = int(ck.cfg("max_position_embeddings", default=512))
    if n and pos.max() >= limit:
        raise AttnError(f"the text has {n} tokens; {ck.folder} takes at most {limit - first} (max_position_embeddings)")
    return pos


def head_sizes(ck: Checkpoint, heads: tuple[str, ...], width: tuple[str, ...], weight: str, axis: int, parts: int = 1):
    """H and r from config.json, checked against the first block's query weight (a config
    that disagrees with its tensors would otherwise give a silently wrong scale 1/√q)."""
    H, r = whole(ck, *heads), whole(ck, *width)
    shape = ck.get(weight).shape
    if len(shape) != 2 or shape[axis] != parts * r:
        raise AttnError(f"{ck.folder}: config.json says {width[0]} {r}, but {weight} has shape {shape}")
    if r % H:
        raise AttnError(f"{ck.folder}/config.json: {width[0]} {r} is not divisible by {heads[0]} {H}")
    return H, r


def _encoder(ck: Checkpoint, ids: list[int], dtype, last: int, names: EncoderNames = BERT):
    """BERT and its family: embeddings + LayerNorm, then post-norm blocks (attention, add &
    norm, feed-forward, add & norm). DistilBERT only names things differently."""
    H, r = head_sizes(ck, (names.heads,), (names.width,), names.layer.format(0) + names.query + ".weight", axis=0)
    eps = float(ck.cfg("layer_norm_eps", default=1e-12))
    act = activation(ck, names.act)
    kind = ck.config.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise AttnError(f"{ck.folder}/config.json: position_embedding_type {kind!r} is not supported (absolute only)")
    causal = is_causal(ck)  # BertLMHeadModel and the like (is_decoder): keys ≤ query
    word = ck.get("embeddings.word_embeddings.weight", dtype)
    x = word[np.array(ids)] + ck.get("embeddings.position_embeddings.weight", dtype)[positions(ck, ids)]
    if ck.has("embeddings.token_type_embeddings.weight"):  # DistilBERT has no token types
        x = x + ck.get("embeddings.token_type_embeddings.weight", dtype)[0]
    w = Layers(ck, dtype, eps)
    x = w.norm("embeddings.LayerNorm", x)
    if ck.has("embeddings_project.weight"):  # ELECTRA: embedding_size → hidden_size
        x = w.linear("embeddings_project", x)
    I = x
    scale = np.asarray(1.0 / math.sqrt(r // H), dtype)
    As, Ps = [], []
    for layer in range(last):
        p = names.layer.format(layer)
        q, k, v = (heads(w.linear(p + m, x), H) for m in (names.query, names.key, names.value))
        A, P = attention(q, k, scale, causal=causal)
        As.append(A)
        Ps.append(P.transpose(0, 2, 1))
        x = w.norm(p + names.norm1, w.linear(p + names.out, merge(P @ v)) + x)
        x = w.norm(p + names.norm2, w.linear(p + names.down, act(w.linear(p + names.up, x))) + x)
    return I, x, As, Ps


def _llama_adapter(ck: Checkpoint, ids: list[int], dtype, last: int):
    """llama.forward's record() calls collected into today's lists (As, Ps)."""
    from attncli.core.models import llama

    As, Ps = [], []
    I, x = llama.forward(ck, ids, dtype, last, lambda layer, A, P: (As.append(A), Ps.append(P)))
    return I, x, As, Ps


def _gpt2(ck: Checkpoint, ids: list[int], dtype, last: int):
    H, r = head_sizes(ck, ("n_head", "num_attention_heads"), ("n_embd", "hidden_size"), "h.0.attn.c_attn.weight", 1, 3)
    eps = float(ck.cfg("layer_norm_epsilon", default=1e-5))
    act = activation(ck, "activation_function")
    n = len(ids)
    limit = ck.cfg("n_positions", "max_position_embeddings", default=1024)
    if n > limit:
        raise AttnError(f"the text has {n} tokens; {ck.folder} takes at most {limit} (n_positions)")
    x = ck.get("wte.weight", dtype)[np.array(ids)] + ck.get("wpe.weight", dtype)[:n]
    I = x
    scale_weights = ck.config.get("scale_attn_weights", True)
    by_layer = ck.config.get("scale_attn_by_inverse_layer_idx", False)
    w = Layers(ck, dtype, eps)
    As, Ps = [], []
    for layer in range(last):
        p = f"h.{layer}."
        qkv = w.conv1d(p + "attn.c_attn", w.norm(p + "ln_1", x))  # Conv1D: x @ W, W is r × 3r
        q, k, v = (heads(part, H) for part in np.split(qkv, 3, axis=-1))
        scale = (1.0 / math.sqrt(r // H) if scale_weights else 1.0) / ((layer + 1) if by_layer else 1.0)
        A, P = attention(q, k, np.asarray(scale, dtype), causal=True)
        As.append(A)
        Ps.append(P.transpose(0, 2, 1))
        x = x + w.conv1d(p + "attn.c_proj", merge(P @ v))
        x = x + w.conv1d(p + "mlp.c_proj", act(w.conv1d(p + "mlp.c_fc", w.norm(p + "ln_2", x))))
    if last == n_layers(ck):
        x = w.norm("ln_f", x)
    return I, x, As, Ps


FORWARD = {
    "bert": _encoder,
    **dict.fromkeys(ROBERTA_LIKE, _encoder),
    "electra": _encoder,
    "distilbert": partial(_encoder, names=DISTILBERT),
    "gpt2": _gpt2,
    **dict.fromkeys(LLAMA_FAMILY, _llama_adapter),  # until forward() takes record(); then llama.forward
}
CAUSAL = ("gpt2", *LLAMA_FAMILY)  # and any encoder whose config says is_decoder


def is_causal(ck: Checkpoint) -> bool:
    return ck.model_type in CAUSAL or bool(ck.config.get("is_decoder", False))


def word_embeddings(ck: Checkpoint) -> str:
    if ck.model_type in LLAMA_FAMILY:
        return "embed_tokens.weight"
    return "wte.weight" if ck.model_type == "gpt2" else "embeddings.word_embeddings.weight"


def whole(ck: Checkpoint, *keys: str) -> int:
    """A positive whole number from config.json (the first of ``keys`` it has)."""
    value = ck.cfg(*keys)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        name = next((k for k in keys if k in ck.config), keys[0])
        raise AttnError(f"{ck.folder}/config.json: {name} must be a positive whole number, not {value!r}")
    return value


def n_layers(ck: Checkpoint) -> int:
    return whole(ck, "num_hidden_layers", "n_layer", "n_layers")


def n_heads(ck: Checkpoint) -> int:
    return whole(ck, "num_attention_heads", "n_head", "n_heads")


def forward(
    ck: Checkpoint, tokens: Tokens, text: str = "", float64: bool = False, last: Optional[int] = None
) -> ModelResult:
    """Run the first ``last`` blocks (all by default) on the tokens' ids."""
    dtype = np.float64 if float64 else np.float32
    ids = tokens.ids
    if any(i is None for i in ids):
        raise AttnError("a checkpoint needs token ids: the folder's tokenizer.json is used")
    try:
        L = n_layers(ck)
        last = L if last is None else min(last, L)
        with np.errstate(all="ignore"):  # overflow shows up below, as non-finite weights
            I, x, As, Ps = FORWARD[ck.model_type](ck, ids, dtype, last)
    except (ValueError, TypeError, IndexError, ArithmeticError) as exc:  # shapes or config values that do not fit
        raise AttnError(f"{ck.folder}: the tensors do not fit together or with config.json ({exc})") from None
    A, A_prime = np.stack(As), np.stack(Ps)
    if not np.isfinite(A_prime).all():
        layer = int(np.argmax(~np.isfinite(A_prime).reshape(len(As), -1).all(axis=1))) + 1
        raise AttnError(
            f"{ck.folder}: the attention weights of layer {layer} are not finite (NaN or overflow):"
            " check the weights and config.json (layer_norm_eps, …); --float64 may help"
        )
    H = A.shape[1]
    r = I.shape[1]
    dims = {"r": r, "q": r // H, "v": r // H, "heads": H, "layers": L, "n": len(ids)}
    folder = str(ck.folder)
    return ModelResult(text, tokens, ck.model_type, folder, dims, I.T, x.T, A, A_prime, ck.config, is_causal(ck))


def run_model(
    folder: str,
    text: str,
    special_tokens: bool = True,
    float64: bool = False,
    last: Optional[int] = None,
    max_tokens: int = 512,
    checkpoint: Optional[Checkpoint] = None,
) -> ModelResult:
    """Tokenise ``text`` with the folder's tokenizer and run the checkpoint."""
    from attncli.core.tokenize import check_text

    ck = checkpoint or load(folder)
    if not text.strip():
        check_text(text, max_tokens, Tokens([], []))
    tokens = tokenize(text, ck.folder, special_tokens)  # its tokenizer.json (or vocabulary files)
    check_text(text, max_tokens, tokens)
    vocab = ck.get(word_embeddings(ck)).shape[0]
    bad = [i for i in tokens.ids if not 0 <= i < vocab]
    if bad:
        raise AttnError(f"{folder}: token id {bad[0]} is outside the embedding table ({vocab} rows)")
    return forward(ck, tokens, text, float64, last)


def rollout(A_prime: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) in the notes' layout.

    Per layer: heads averaged, the identity added for the residual path, each query's
    weights (a column here) renormalised to sum to 1; then multiplied through the layers:
    R_l = R_{l-1} Ã_l, so column j of R says how query j's output draws on each input token."""
    L, H, n, _ = A_prime.shape
    R = np.eye(n)
    for layer in range(L):
        At = A_prime[layer].astype(np.float64).mean(axis=0) + np.eye(n)
        At /= At.sum(axis=0, keepdims=True)
        R = R @ At
    return R


def hide(M: np.ndarray, keep: np.ndarray, renormalise: bool = True) -> np.ndarray:
    """Drop the rows and columns of hidden tokens; renormalise each remaining column."""
    out = M[np.ix_(keep, keep)]
    if renormalise:
        s = out.sum(axis=0, keepdims=True)
        out = np.divide(out, s, out=np.zeros_like(out), where=s > 0)
    return out
