"""The tokenizer of a GGUF file, rebuilt from its ``tokenizer.ggml.*`` metadata with the
``tokenizers`` library.

* ``gpt2``: byte-level BPE from the token list and the merges (Llama 3, Qwen 2/3, SmolLM);
  the split before BPE follows ``tokenizer.ggml.pre``.
* ``llama``: SentencePiece-style BPE (Llama 2, Mistral, Gemma): spaces are ▁, unknown
  characters fall back to <0xXX> byte tokens, and the merges are derived from the scores
  (a pair merges with the rank of the score of the piece it makes, as transformers'
  SentencePiece converter does).
Control and user-defined tokens (types 3 and 4) are special; BOS/EOS are added when
``add_bos_token``/``add_eos_token`` say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from attncli.errors import AttnError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CONTROL, USER_DEFINED, BYTE = 3, 4, 6
LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
WHOLE_WORDS = ("llama-bpe", "llama3", "smaug-bpe")  # Llama 3: a word in the vocabulary is one token
SPLITS = {"llama-bpe": LLAMA3, "llama3": LLAMA3, "smaug-bpe": LLAMA3, "qwen2": QWEN2, "deepseek-r1-qwen": QWEN2}


def tokenizer_from_metadata(path: Path, meta: dict[str, Any]) -> Tokenizer:
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise AttnError(f"{path}: missing metadata tokenizer.ggml.tokens (the vocabulary)")
    if model == "gpt2":
        tok = _byte_level(path, meta, tokens)
    elif model == "llama":
        tok = _sentencepiece(meta, tokens)
    else:
        raise AttnError(f"{path}: tokenizer model {model!r} is not supported (attncli reads gpt2, llama)")
    _specials(tok, meta, tokens)
    _post_processor(tok, meta, tokens, default_bos=model == "llama")
    tok.no_padding()
    tok.no_truncation()
    return tok


def _byte_level(path: Path, meta: dict[str, Any], tokens: list[str]) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    merges = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges, list):
        raise AttnError(f"{path}: missing metadata tokenizer.ggml.merges (a gpt2 tokenizer needs them)")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    pre = meta.get("tokenizer.ggml.pre", "default")
    tok = Tokenizer(models.BPE(vocab, pairs, ignore_merges=pre in WHOLE_WORDS))
    split = SPLITS.get(pre)
    if pre == "smollm":  # SmolLM: every digit apart, then GPT-2's split
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
    elif split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), "isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tok.decoder = decoders.ByteLevel()
    return tok


def sentencepiece_merges(tokens: list[str], scores: list[float | None]) -> list[tuple[str, str]]:
    """Every split (left, right) of a piece into two pieces of the vocabulary, ranked by the
    score of the piece (higher first), then by the ids of left and right; pieces scored
    None (control, user-defined and byte tokens) are never made by merging."""
    vocab = {t: i for i, t in enumerate(tokens)}
    found = []
    for piece, pid in vocab.items():
        score = scores[pid]
        if score is None:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                found.append((-score, vocab[left], vocab[right], left, right))
    found.sort()
    return [(left, right) for _, _, _, left, right in found]


def _sentencepiece(meta: dict[str, Any], tokens: list[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers

    scores = meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
    types = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    unk_id = meta.get("tokenizer.ggml.unknown_token_id", 0)
    merges = sentencepiece_merges(
        tokens, [s if ty not in (CONTROL, USER_DEFINED, BYTE) else None for s, ty in zip(scores, types)]
    )
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges, unk_token=tokens[unk_id], byte_fallback=True, fuse_unk=True))
    steps: list[normalizers.Normalizer] = [normalizers.Replace(" ", "▁")]
    if meta.get("tokenizer.ggml.add_space_prefix", True):
        steps.insert(0, normalizers.Prepend("▁"))
    tok.normalizer = normalizers.Sequence(steps)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return tok


def _specials(tok: Any, meta: dict[str, Any], tokens: list[str]) -> None:
    from tokenizers import AddedToken

    types = meta.get("tokenizer.ggml.token_type") or []
    control = [t for t, ty in zip(tokens, types) if ty == CONTROL or (ty == USER_DEFINED and _tag(t))]
    user = [t for t, ty in zip(tokens, types) if ty == USER_DEFINED and not _tag(t)]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])  # Gemma's "\n\n", tabs, …


def _tag(token: str) -> bool:
    """<start_of_turn>, <|im_start|>: chat-template markers count as special."""
    return len(token) > 2 and token.startswith("<") and token.endswith(">")


def _post_processor(tok: Any, meta: dict[str, Any], tokens: list[str], default_bos: bool) -> None:
    from tokenizers import processors

    bos, eos = meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", default_bos)) and bos is not None
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token", False)) and eos is not None
    if not (add_bos or add_eos):
        return
    first: list[Any] = [bos] if add_bos else []  # token ids, as the metadata gives them
    last: list[Any] = [eos] if add_eos else []
    single = " ".join([tokens[i] for i in first] + ["$A"] + [tokens[i] for i in last])
    pair = " ".join([tokens[i] for i in first] + ["$A", "$B:1"] + [tokens[i] for i in last])
    used = {tokens[i]: i for i in first + last}
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=list(used.items()))
