"""Text to tokens with the ``tokenizers`` library.

Built-in specs use its pre-tokenizers (no vocabulary, so no ids): ``whitespace``
(words and punctuation apart), ``bert`` (BERT's basic splitting) and ``char`` (one
token per non-space character). Any other spec is a path to a Hugging Face
``tokenizer.json``, or a folder holding one (or, in a model folder, the vocabulary files
of a "slow" BERT or GPT-2 tokenizer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional
from weakref import WeakKeyDictionary

from attncli.errors import AttnError

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from tokenizers.pre_tokenizers import PreTokenizer

BUILTIN = ("whitespace", "bert", "char")


@dataclass
class Tokens:
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character offsets into the text, end exclusive
    ids: list[Optional[int]] = field(default_factory=list)  # None without a vocabulary
    special: list[bool] = field(default_factory=list)  # [CLS], [SEP] and the like
    generated: list[bool] = field(default_factory=list)  # continued by the model (model --generate)

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [None] * len(self.tokens)
        if not self.special:
            self.special = [False] * len(self.tokens)
        if not self.generated:
            self.generated = [False] * len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)


def _pre_tokenizer(spec: str) -> PreTokenizer:
    from tokenizers import Regex, pre_tokenizers

    if spec == "whitespace":
        return pre_tokenizers.Whitespace()
    if spec == "bert":
        return pre_tokenizers.BertPreTokenizer()
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")])


VOCAB_FILES = ("vocab.txt", "vocab.json", "merges.txt")


def tokenizer_path(spec: str | Path) -> Path:
    """What a path spec names: a tokenizer.json file, the one inside a folder, or a model
    folder (with config.json) that holds a slow tokenizer's files instead (see
    :func:`from_vocab_files`)."""
    path = Path(spec)
    if path.is_dir() and not (path / "tokenizer.json").is_file() and (path / "config.json").is_file():
        if (path / "vocab.txt").is_file() or all((path / n).is_file() for n in VOCAB_FILES[1:]):
            return path  # a model folder saved with a slow tokenizer
        raise AttnError(
            f"{path}: missing tokenizer.json (or the vocab.txt of a BERT tokenizer,"
            " or the vocab.json and merges.txt of GPT-2 or RoBERTa)"
        )
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise AttnError(
            f"--tokenizer: {spec!r} is neither {', '.join(BUILTIN)} nor a tokenizer.json file or a folder holding one"
        )
    return path


def load_tokenizer(spec: str | Path) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from a file (or a model folder's vocabulary files), with
    padding and truncation switched off so that settings stored in the file never change
    which tokens are shown. Read once per file and process (a batch tokenises many lines)."""
    return _read_tokenizer(tokenizer_path(spec).resolve())


@lru_cache(maxsize=16)
def _read_tokenizer(path: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        tok = from_vocab_files(path) if path.is_dir() else Tokenizer.from_file(str(path))
    except AttnError:
        raise
    except BaseException as exc:  # noqa: B036  the Rust side raises plain Exceptions, or panics
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        what = "its tokenizer files" if path.is_dir() else "not a valid tokenizer.json"
        raise AttnError(f"{path}: {what} ({reason})") from None
    tok.no_padding()
    tok.no_truncation()
    return tok


def _json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise AttnError(f"{path}: nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttnError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _token_text(value: object) -> Optional[str]:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def from_vocab_files(folder: Path) -> Tokenizer:
    """The fast tokenizer Hugging Face ``transformers`` builds from a slow tokenizer's files
    (its BertConverter, GPT2Converter and RobertaConverter), for folders saved without a
    tokenizer.json: ``vocab.txt`` is BERT's WordPiece; ``vocab.json`` + ``merges.txt`` is
    byte-level BPE, for GPT-2 or RoBERTa as ``config.json``'s model_type says."""
    cfg = {**_json_file(folder / "special_tokens_map.json"), **_json_file(folder / "tokenizer_config.json")}
    if (folder / "vocab.txt").is_file():
        return _wordpiece(folder, cfg)
    model_type = _json_file(folder / "config.json").get("model_type")
    if model_type not in ("gpt2", "roberta"):
        raise AttnError(
            f"{folder}: no tokenizer.json; vocab.json + merges.txt are read for GPT-2 and RoBERTa only"
            f" (config.json says model_type {model_type!r})"
        )
    return _byte_level(folder, cfg, model_type)


def _special(cfg: dict[str, Any], key: str, default: str) -> str:
    return _token_text(cfg.get(key)) or default


def _wordpiece(folder: Path, cfg: dict[str, Any]) -> Tokenizer:
    """BERT: lower-casing, accents and Chinese characters as tokenizer_config.json says
    (lower-case by default), and ``[CLS] … [SEP]`` around the text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, token in enumerate(lines):
        vocab.setdefault(token.rstrip("\r"), i)
    unk, cls, sep = (_special(cfg, k + "_token", d) for k, d in (("unk", "[UNK]"), ("cls", "[CLS]"), ("sep", "[SEP]")))
    for name in (unk, cls, sep):
        if name not in vocab:
            raise AttnError(f"{folder / 'vocab.txt'}: no {name} token")
    tok = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=cfg.get("tokenize_chinese_chars", True) is not False,
        strip_accents=cfg.get("strip_accents"),
        lowercase=cfg.get("do_lower_case", True) is not False,
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    # BERT's five specials stay whole in the text, as transformers' BertTokenizer keeps them
    # (its defaults, unless tokenizer_config.json names others), where the vocabulary has them
    defaults = (("unk", "[UNK]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("cls", "[CLS]"), ("mask", "[MASK]"))
    tok.add_special_tokens([t for t in (_special(cfg, k + "_token", d) for k, d in defaults) if t in vocab])
    return tok


def _byte_level(folder: Path, cfg: dict[str, Any], model_type: str) -> Tokenizer:
    """GPT-2 (nothing around the text) or RoBERTa (``<s> … </s>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    bpe = models.BPE.from_file(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
    )
    tok = Tokenizer(bpe)
    prefix_space = bool(cfg.get("add_prefix_space", False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()

    def known(names: Iterable[str]) -> list[str]:
        return [t for t in names if tok.token_to_id(t) is not None]

    if model_type == "gpt2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        texts = (_token_text(cfg.get(k)) for k in ("unk_token", "bos_token", "eos_token"))
        names = {t for t in texts if t is not None}
        tok.add_special_tokens(known(sorted(names or {"<|endoftext|>"})))
        return tok
    cls, sep = _special(cfg, "cls_token", "<s>"), _special(cfg, "sep_token", "</s>")
    cls_id, sep_id = tok.token_to_id(cls), tok.token_to_id(sep)
    if cls_id is None or sep_id is None:
        raise AttnError(f"{folder / 'vocab.json'}: no {cls if cls_id is None else sep} token")
    tok.post_processor = processors.RobertaProcessing(
        (sep, sep_id), (cls, cls_id), trim_offsets=True, add_prefix_space=prefix_space
    )
    defaults = (("bos", "<s>"), ("pad", "<pad>"), ("eos", "</s>"), ("unk", "<unk>"), ("mask", "<mask>"))
    tok.add_special_tokens(known([_special(cfg, k + "_token", d) for k, d in defaults]))
    return tok


def _extends(ch: str) -> bool:
    """A character that belongs to the one before it in a grapheme cluster: a combining
    mark, a variation selector (❤️), a zero-width joiner, a skin tone, an emoji tag."""
    import unicodedata

    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp == 0x200D
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    )


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF  # flags are pairs of regional indicators


def graphemes(text: str, offsets: list[tuple[int, int]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Adjacent pieces joined where a split would cut a grapheme cluster (a lone variation
    selector, the five pieces of a family emoji 👨‍👩‍👧, half a flag): tokens and offsets."""
    merged: list[list[int]] = []
    for start, end in offsets:
        if merged and merged[-1][1] == start and _joins(text, merged[-1], start):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [text[a:b] for a, b in merged], [(a, b) for a, b in merged]


def _joins(text: str, before: list[int], start: int) -> bool:
    """Whether the piece starting at ``start`` continues the cluster of ``before``."""
    prev, ch = text[start - 1], text[start]
    if _extends(ch) or prev == "\u200d":
        return True
    piece = text[before[0] : before[1]]
    return _regional(ch) and _regional(prev) and sum(map(_regional, piece)) % 2 == 1


def one_long_token(text: str, tokens: Tokens, spec: str | Path) -> Optional[str]:
    """A hint when text without spaces came out as one long token (Chinese or Japanese
    with the whitespace tokenizer): ``-t char`` splits it into characters."""
    if str(spec) not in ("whitespace", "bert") or len(tokens) != 1 or any(ch.isspace() for ch in text.strip()):
        return None
    if len(tokens.tokens[0]) < 4:
        return None
    return (
        f"the text is one token of {len(tokens.tokens[0])} characters (it has no spaces):"
        " try -t char for one token per character, or a tokenizer.json that knows the language"
    )


def tokenize(text: str, spec: str | Path = "whitespace", special_tokens: bool = True) -> Tokens:
    """Split ``text`` into tokens with offsets (and ids when the tokenizer has a vocabulary).

    ``special_tokens=False`` leaves out what a tokenizer's post-processor adds ([CLS], …).
    """
    if isinstance(spec, str) and spec in BUILTIN:  # a Path named "bert" is a folder, not the built-in
        pieces = _pre_tokenizer(spec).pre_tokenize_str(text)
        return Tokens(*graphemes(text, [(start, end) for _, (start, end) in pieces]))
    return encode(load_tokenizer(spec), text, special_tokens, tokenizer_path(spec))


def encode(tok: Tokenizer, text: str, special_tokens: bool = True, where: str | Path = "the tokenizer") -> Tokens:
    """``text`` through a loaded tokenizer (a file's, or a checkpoint's: ``ck.tokenizer()``),
    each token labelled as the model sees it; ``where`` names the tokenizer in the one error
    line a tokenizer that fails on the text gives.

    A piece the vocabulary does not hold (SentencePiece's unknown pieces in XLM-R or
    CamemBERT, where the tokenizer reports the original text) reaches the model as its id's
    token, so it is labelled ``<unk>(€)``: that token, then the original text in brackets.
    """
    try:
        enc = tok.encode(text, add_special_tokens=special_tokens)
    except BaseException as exc:  # noqa: B036  a pathological tokenizer.json makes the Rust side panic
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise AttnError(f"{where}: the tokenizer failed on this text ({reason})") from None
    tokens = list(enc.tokens)
    for k, (token, i) in enumerate(zip(tokens, enc.ids)):
        if tok.token_to_id(token) != i:
            seen = tok.id_to_token(i)
            if seen is not None:
                tokens[k] = f"{seen}({token})"
    offsets = [(start, end) for start, end in enc.offsets]
    control = _control(tok)
    special = [
        bool(added) or (i in control and text[start:end] == control[i])
        for added, i, (start, end) in zip(enc.special_tokens_mask, enc.ids, offsets)
    ]
    return Tokens(tokens, offsets, list(enc.ids), special)


MASKS = ("[MASK]", "<mask>")  # a mask token stands for a word: content, not a marker
_CONTROL: WeakKeyDictionary[Tokenizer, dict[int, str]] = WeakKeyDictionary()


def _control(tok: Tokenizer) -> dict[int, str]:
    """The tokenizer's special added tokens by id (BOS, [SEP], <|im_start|>, …), masks left out.

    Typed in the text they are special as much as the ones the tokenizer adds: a chat
    template's markers are. The typed text must be the token itself, so an unknown word that
    became [UNK] stays content.
    """
    if tok not in _CONTROL:
        added = tok.get_added_tokens_decoder()
        _CONTROL[tok] = {i: t.content for i, t in added.items() if t.special and t.content not in MASKS}
    return _CONTROL[tok]


def check_text(text: str, max_tokens: int, tokens: Tokens) -> None:
    if not text.strip():
        raise AttnError("the text is empty: give a sentence, or pipe one line per sentence")
    if len(tokens) == 0:
        raise AttnError(f"the text {text!r} gives no tokens")
    if len(tokens) > max_tokens:
        raise AttnError(
            f"the text has {len(tokens)} tokens, more than --max-tokens {max_tokens}"
            " (raise --max-tokens or shorten the text)"
        )
