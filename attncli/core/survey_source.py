"""Where a survey's attention comes from: a checkpoint folder or ``run``'s random weights.

A source turns a line of text into one or more token windows (a line longer than the
model takes is cut into windows, each framed by the tokenizer's special tokens, never
silently truncated), gives the attention of groups of windows layer by layer (one
padded B×H×n×n stack per group and layer: a checkpoint runs them all as one pass), and builds
the induction test sequences: T random tokens from the vocabulary, drawn with the seed,
repeated twice.
Each process (a local worker or a Dask worker) keeps one source per spec, loaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, TypeVar, Union, cast

import numpy as np

from attncli.core.heap import keep_freed_memory
from attncli.core.tokenize import Tokens, encode
from attncli.errors import AttnError

if TYPE_CHECKING:
    from attncli.core.models.checkpoint import Checkpoint
    from attncli.core.settings import Settings

Item = TypeVar("Item")
Record = Callable[[int, int, np.ndarray], None]  # (group, layer0, A' B×H×n×n padded)


@dataclass(frozen=True)
class Spec:
    """Everything a worker needs to rebuild the source (small, picklable)."""

    model: Optional[str] = None  # an absolute checkpoint folder; None: random weights
    settings: Optional[Settings] = None  # the settings of a random baseline
    window: Optional[int] = None  # tokens per window; None: the model's limit (--max-tokens for random)
    seed: int = 0
    induction: int = 32  # random repeated sequences for the induction score
    induction_len: int = 20  # T: tokens per half
    special: bool = True


@dataclass(frozen=True)
class Info:
    """What the parent reports about the source."""

    name: str
    model_type: str
    layers: int
    heads: int
    causal: bool
    window: int


def model_limit(ck: Checkpoint) -> int:
    """The longest input a checkpoint takes (its position table; RoBERTa counts from
    padding_idx + 1)."""
    from attncli.core.models.spec import ROBERTA_LIKE

    if ck.model_type == "gpt2":
        return int(ck.cfg("n_positions", "max_position_embeddings", default=1024))
    limit = int(ck.cfg("max_position_embeddings", "n_positions", default=512))
    if ck.model_type in ROBERTA_LIKE:
        limit -= int(ck.config.get("pad_token_id", 1)) + 1
    return limit


def frame(special: list[bool]) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after the text."""
    n = len(special)
    before = next((k for k, s in enumerate(special) if not s), n)
    after = next((k for k, s in enumerate(reversed(special)) if not s), 0) if before < n else 0
    return before, after


def cut(tokens: Tokens, limit: int) -> list[Tokens]:
    """``tokens`` as windows of at most ``limit`` tokens: the text between the tokenizer's
    leading and trailing special tokens is cut into consecutive pieces, each framed again."""
    if len(tokens) <= limit:
        return [tokens]
    before, after = frame(tokens.special)
    size = limit - before - after
    if size < 1:
        raise AttnError(f"a window of {limit} tokens leaves no room for text between the special tokens")
    body = range(before, len(tokens) - after)
    head, tail = list(range(before)), list(range(len(tokens) - after, len(tokens)))
    out: list[Tokens] = []
    for start in range(body.start, body.stop, size):
        idx = head + list(range(start, min(start + size, body.stop))) + tail
        out.append(
            Tokens(
                [tokens.tokens[k] for k in idx],
                [tokens.offsets[k] for k in idx],
                [tokens.ids[k] for k in idx],
                [tokens.special[k] for k in idx],
            )
        )
    return out


def draw(candidates: np.ndarray, T: int, seed: int, index: int) -> np.ndarray:
    """T distinct random picks from ``candidates`` for induction sequence ``index``."""
    rng = np.random.default_rng([seed, 16, index])
    return rng.choice(candidates, size=T, replace=len(candidates) < T)


def token_ids(tokens: Tokens) -> list[int]:
    """``tokens.ids`` of tokens that all have one (a checkpoint's tokenizer gives every token an id)."""
    return cast("list[int]", tokens.ids)


def repeated(pick: list[Item], T: int, frame_tokens: tuple[list[Item], list[Item]]) -> tuple[list[Item], int]:
    """prefix + pick + pick + suffix, and where the first copy starts."""
    before, after = frame_tokens
    return before + pick + pick + after, len(before)


class ModelSource:
    """A checkpoint folder: memory-mapped weights, its tokenizer, numpy forward pass."""

    def __init__(self, spec: Spec) -> None:
        from attncli.core.models.forward import is_causal, n_heads, n_layers, word_embeddings
        from attncli.core.models.open import load

        assert spec.model is not None, "a checkpoint source needs the model folder"
        self.spec = spec
        self.ck = load(spec.model)
        self.tok = self.ck.tokenizer()
        self.layers, self.heads = n_layers(self.ck), n_heads(self.ck)
        self.causal = is_causal(self.ck)
        self.limit = min(model_limit(self.ck), spec.window or 1 << 30)
        self.rows = int(self.ck.get(word_embeddings(self.ck)).shape[0])
        probe = self.encode("a")
        before, after = frame(probe.special)
        self.frame = (list(range(before)), list(range(len(probe) - after, len(probe))))
        self.probe = probe
        self.extra = before + after

    def info(self) -> Info:
        from attncli.core.models.forward import model_name

        return Info(model_name(self.ck), self.ck.model_type, self.layers, self.heads, self.causal, self.limit)

    def encode(self, text: str) -> Tokens:
        return encode(self.tok, text, self.spec.special)

    def windows(self, text: str) -> tuple[list[Tokens], int]:
        tokens = self.encode(text)
        bad = [i for i in token_ids(tokens) if not 0 <= i < self.rows]
        if bad:
            raise AttnError(f"token id {bad[0]} is outside the embedding table ({self.rows} rows)")
        return cut(tokens, self.limit), len(tokens)

    def attend(self, groups: list[list[Tokens]], record: Record) -> None:
        """The groups' attention, one batched forward pass (:func:`forward_chunk`)."""
        from attncli.core.models.forward import forward_chunk

        forward_chunk(self.ck, [[token_ids(t) for t in group] for group in groups], record)

    def candidates(self) -> np.ndarray:
        special = {int(i) for i, t in self.tok.get_added_tokens_decoder().items() if t.special}
        special |= {token_ids(self.probe)[k] for k in self.frame[0] + self.frame[1]}
        return np.array([i for i in range(min(self.rows, self.tok.get_vocab_size())) if i not in special])

    def induction(self, index: int, T: int) -> tuple[Tokens, int]:
        if not hasattr(self, "_candidates"):
            self._candidates = self.candidates()
        pick = [int(i) for i in draw(self._candidates, T, self.spec.seed, index)]
        probe_ids = token_ids(self.probe)
        frame_ids = ([probe_ids[k] for k in self.frame[0]], [probe_ids[k] for k in self.frame[1]])
        ids, start = repeated(pick, T, frame_ids)
        special = [k < start or k >= start + 2 * T for k in range(len(ids))]
        words = [self.tok.id_to_token(i) or "" for i in ids]
        return Tokens(words, [(0, 0)] * len(ids), cast("list[Optional[int]]", ids), special), start


class RandomSource:
    """``run``'s random-weight attention (one layer) as a baseline."""

    def __init__(self, spec: Spec) -> None:
        from attncli.core.pipeline import tokenizer_spec

        assert spec.settings is not None, "a random baseline needs its settings"
        self.spec = spec
        self.settings = spec.settings
        self.settings.check()
        self.tokenizer = tokenizer_spec(self.settings)
        self.layers, self.heads = 1, self.settings.heads or 1
        self.causal = bool(self.settings.causal)
        self.limit = min(self.settings.max_tokens, spec.window or 1 << 30)
        self.vocab = self._vocab()
        self.extra = 0

    def _vocab(self) -> list[str]:
        if self.tokenizer in ("whitespace", "bert", "char"):
            return [f"w{k}" for k in range(1, 5001)]
        from attncli.core.tokenize import load_tokenizer

        return sorted(load_tokenizer(self.tokenizer).get_vocab(with_added_tokens=False))

    def info(self) -> Info:
        s = self.settings
        name = f"random weights (r={s.dim}, H={self.heads}, seed {s.seed})"
        return Info(name, "random", 1, self.heads, self.causal, self.limit)

    def windows(self, text: str) -> tuple[list[Tokens], int]:
        from attncli.core.tokenize import tokenize

        tokens = tokenize(text, self.tokenizer, self.settings.special_tokens)
        return cut(tokens, self.limit), len(tokens)

    def attend(self, groups: list[list[Tokens]], record: Record) -> None:
        """The random weights' A' of each window (``pipeline.run`` after its tokenising),
        padded with zeros into one B×H×n×n stack per group (one layer)."""
        from attncli.core.pipeline import attend_tokens

        for g, group in enumerate(groups):
            n = max(len(t) for t in group)
            stack = np.zeros((len(group), self.heads, n, n))
            for b, tokens in enumerate(group):
                m = len(tokens)
                stack[b, :, :m, :m] = attend_tokens(tokens, self.settings).A_prime[0]
            record(g, 0, stack)

    def induction(self, index: int, T: int) -> tuple[Tokens, int]:
        pick = [self.vocab[int(k)] for k in draw(np.arange(len(self.vocab)), T, self.spec.seed, index)]
        words, start = repeated(pick, T, ([], []))
        return Tokens(words, [(0, 0)] * len(words)), start


Source = Union[ModelSource, RandomSource]
_SOURCES: dict[str, Source] = {}


def source(spec: Spec) -> Source:
    """The process's source for ``spec``, built once."""
    key = repr(spec)
    if key not in _SOURCES:
        _SOURCES.clear()
        keep_freed_memory()
        _SOURCES[key] = ModelSource(spec) if spec.model is not None else RandomSource(spec)
    return _SOURCES[key]
