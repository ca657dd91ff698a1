"""The main job as one function: tokenise → embed → attend.

Everything the CLI's ``run`` does to numbers happens here; rendering, figures and
exports take the :class:`AttentionResult` it returns. The settings are in
:mod:`attncli.core.settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from attncli.core import blas, embed
from attncli.core.attention import MultiHead, finite, multi_head
from attncli.core.result import AttentionResult, Dims
from attncli.core.settings import Progress, Settings
from attncli.core.tokenize import Tokens, check_text, one_long_token, tokenize
from attncli.errors import AttnError
from attncli.limits import check_memory


def head_sizes(r: int, settings: Settings) -> tuple[int, int, int]:
    """H, q and v for random weights: q = v = r/H unless given."""
    H = settings.heads or 1
    q = settings.q_dim or r // H
    v = settings.v_dim or r // H
    if q < 1 or v < 1:
        raise AttnError(f"r = {r} is smaller than --heads {H}: give --q-dim and --v-dim, or a larger --dim")
    return H, q, v


def tokenizer_spec(settings: Settings) -> str:
    """The tokenizer asked for; left out, a model folder's own, else whitespace."""
    if settings.tokenizer is not None:
        return settings.tokenizer
    if settings.embeddings != "random":
        found = model_tokenizer(settings.embeddings)
        if found:
            return found
    return "whitespace"


def model_tokenizer(spec: str) -> Optional[str]:
    """The tokenizer that comes with a model folder or sits beside a .safetensors: its
    tokenizer.json, or the folder when it has a slow tokenizer's vocabulary files."""
    from attncli.core.tokenize import tokenizer_path
    from attncli.core.vectors import kind

    path = Path(spec)
    if kind(path) not in ("model", "safetensors"):
        return None
    try:
        return str(tokenizer_path(path if path.is_dir() else path.parent))
    except AttnError:
        return None


def embeddings(
    tokens: Tokens, settings: Settings, warnings: list[str], progress: Optional[Progress] = None
) -> np.ndarray:
    """E (r×n): seeded random vectors, or rows of a vectors file / checkpoint."""
    if settings.embeddings == "random":
        return embed.random_embeddings(tokens.tokens, settings.dim, settings.seed)
    from attncli.core.vectors import lookup

    return lookup(settings.embeddings, tokens, settings, warnings, progress)


def weights_for(r: int, settings: Settings) -> dict[str, Any]:
    if settings.weights is None:
        H, q, v = head_sizes(r, settings)
        return embed.random_weights(r, H, q, v, settings.seed)
    from attncli.core.weights import load_weights

    return load_weights(settings.weights, r, settings)


def prefetch(texts: list[str], settings: Settings, progress: Optional[Progress] = None) -> None:
    """Read the vectors of every sentence of a batch in one pass over a large file."""
    if settings.embeddings == "random" or len(texts) < 2:
        return
    from attncli.core.vectors import prefetch as read_rows

    spec = tokenizer_spec(settings)
    token_lists = [tokenize(t, spec, settings.special_tokens).tokens for t in texts if t.strip()]
    read_rows(settings.embeddings, token_lists, progress, settings.encoding)


def run(text: str, settings: Optional[Settings] = None, progress: Optional[Progress] = None) -> AttentionResult:
    """Tokenise ``text``, embed it and run self-attention; return every matrix.

    ``progress(done, total)`` is called while a large vectors file is read."""
    settings = settings or Settings()
    settings.check()
    if not text.strip():
        check_text(text, settings.max_tokens, Tokens([], []))
    spec = tokenizer_spec(settings)
    tokens = tokenize(text, spec, settings.special_tokens)
    check_text(text, settings.max_tokens, tokens)
    hint = one_long_token(text, tokens, spec)
    result = attend_tokens(tokens, settings, progress, text=text)
    if hint:
        result.warnings.insert(0, hint)
    return result


def attend_tokens(
    tokens: Tokens, settings: Settings, progress: Optional[Progress] = None, *, text: str = ""
) -> AttentionResult:
    """Embed tokens already split and run self-attention (the second half of :func:`run`)."""
    warnings: list[str] = []
    E = embeddings(tokens, settings, warnings, progress)
    r, n = E.shape
    P = embed.sinusoidal(r, n) if settings.positions == "sinusoidal" else None
    I = E + P if P is not None else E
    dtype = settings.dtype
    I = I.astype(dtype, copy=False)
    W: dict[str, Any] = {
        k: (w.astype(dtype, copy=False) if w is not None else None) for k, w in weights_for(r, settings).items()
    }
    H = int(W["Wq"].shape[0])
    if settings.weights is None and r % H and not (settings.q_dim and settings.v_dim):
        warnings.append(
            f"r = {r} is not divisible by {H} heads: q = v = {r // H} (r // H), so W^o maps {H * (r // H)} → {r};"
            " give --q-dim/--v-dim, or a --dim divisible by --heads"
        )
    check_memory(
        n * n * H * np.dtype(dtype).itemsize * KEPT, f"{n} tokens × {H} heads", "lower --max-tokens or shorten the text"
    )
    with blas.for_rows(n):
        att = _attend(I, W, settings)
    check_finite(I, att, settings)
    result = as_result(text, tokens, I, W, att, settings)
    result.warnings = warnings
    if P is not None:
        result.E, result.P = E.astype(dtype, copy=False), P.astype(dtype, copy=False)
    return result


def _attend(I: np.ndarray, W: dict[str, Any], settings: Settings) -> MultiHead:
    return multi_head(
        I,
        W["Wq"],
        W["Wk"],
        W["Wv"],
        W["Wo"],
        norm=settings.norm,
        scale=settings.scale,
        causal=settings.causal,
        temperature=settings.temperature,
        keep_scores=settings.keep_scores,
    )


KEPT = 6  # n×n float64 matrices per head alive at the peak: A, A/T, exp, A', and the stacks of A and A'


def check_finite(I: np.ndarray, att: MultiHead, settings: Settings) -> None:
    """NaN or ±inf anywhere in a result is an error naming the stage where it first
    appeared (never NaN in JSON or a blank figure). Masked scores (-inf) are the one
    exception, by design."""
    visible = np.triu(np.ones((I.shape[1],) * 2, dtype=bool)) if settings.causal else slice(None)
    T = f"/{settings.temperature:g}" if settings.temperature != 1.0 else ""
    stages: tuple[tuple[str, Callable[[], list[np.ndarray]]], ...] = (
        ("the input I", lambda: [I]),
        ("Q, K, V = W I", lambda: [att.Q, att.K, att.V]),
        ("the scores A = KᵀQ", lambda: [] if att.A is None else [att.A[:, visible]]),
        (f"A′ = {settings.norm}(A{T})", lambda: [att.A_prime]),
        ("O = V A′", lambda: [att.O_heads, att.O]),
    )
    for stage, matrices in stages:
        if not all(finite(m) for m in matrices()):
            raise AttnError(
                f"NaN or infinite values after {stage}: the numbers overflow; use smaller vectors or"
                " weights" + (", or a larger --temperature" if T else "")
            )


def as_result(
    text: str, tokens: Tokens, I: np.ndarray, W: dict[str, Any], att: MultiHead, settings: Settings
) -> AttentionResult:
    """A run's heads as the one result type: one layer, every head."""
    H = att.Q.shape[0]
    dims = Dims(r=int(I.shape[0]), q=int(W["Wq"].shape[1]), v=int(W["Wv"].shape[1]), heads=H, n=len(tokens))
    return AttentionResult(
        text=text,
        tokens=tokens,
        dims=dims,
        A=att.A[None] if att.A is not None else None,
        A_prime=att.A_prime[None],
        layers=[1],
        heads=list(range(1, H + 1)),
        I=I,
        O=att.O,
        causal=settings.causal,
        norm=settings.norm,
        settings=settings,
        Q=att.Q,
        K=att.K,
        V=att.V,
        O_heads=att.O_heads,
        O_concat=att.O_concat,
        weights=W,
    )
