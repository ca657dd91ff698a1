"""Text to tokens with the ``tokenizers`` library.

Built-in specs use its pre-tokenizers (no vocabulary, so no ids): ``whitespace``
(words and punctuation apart), ``bert`` (BERT's basic splitting) and ``char`` (one
token per non-space character). Any other spec is a path to a Hugging Face
``tokenizer.json`` or a folder holding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import AttnError

BUILTIN = ("whitespace", "bert", "char")


@dataclass
class Tokens:
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character offsets into the text, end exclusive
    ids: list[Optional[int]] = field(default_factory=list)  # None without a vocabulary
    special: list[bool] = field(default_factory=list)  # [CLS], [SEP] and the like

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [None] * len(self.tokens)
        if not self.special:
            self.special = [False] * len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)


def _pre_tokenizer(spec: str):
    from tokenizers import Regex, pre_tokenizers

    if spec == "whitespace":
        return pre_tokenizers.Whitespace()
    if spec == "bert":
        return pre_tokenizers.BertPreTokenizer()
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")])


def tokenizer_path(spec: str | Path) -> Path:
    """The tokenizer.json a path spec names (the file, or one inside a folder)."""
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise AttnError(
            f"--tokenizer: {spec!r} is neither {', '.join(BUILTIN)} nor a tokenizer.json file or a folder holding one"
        )
    return path


_LOADED: dict[Path, object] = {}


def load_tokenizer(spec: str | Path):
    """A ``tokenizers.Tokenizer`` from a file, with padding and truncation switched off
    so that settings stored in the file never change which tokens are shown."""
    path = tokenizer_path(spec).resolve()
    if path in _LOADED:
        return _LOADED[path]
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exceptions
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AttnError(f"{path}: not a valid tokenizer.json ({reason})") from None
    tok.no_padding()
    tok.no_truncation()
    _LOADED[path] = tok
    return tok


def tokenize(text: str, spec: str | Path = "whitespace", special_tokens: bool = True) -> Tokens:
    """Split ``text`` into tokens with offsets (and ids when the tokenizer has a vocabulary).

    ``special_tokens=False`` leaves out what a tokenizer's post-processor adds ([CLS], …).
    """
    if str(spec) in BUILTIN:
        pieces = _pre_tokenizer(str(spec)).pre_tokenize_str(text)
        return Tokens([p for p, _ in pieces], [tuple(o) for _, o in pieces])
    tok = load_tokenizer(spec)
    enc = tok.encode(text, add_special_tokens=special_tokens)
    return Tokens(
        list(enc.tokens),
        [tuple(o) for o in enc.offsets],
        list(enc.ids),
        [bool(s) for s in enc.special_tokens_mask],
    )


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
