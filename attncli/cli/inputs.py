"""Where the text comes from: the TEXT argument, or stdin one sentence per line.

stdin is read as a stream: the first sentence is worked on (and its JSON line written)
before the input ends, and memory stays flat however many lines come (``yes "the cat" |
attncli run --json --no-plot | head -3`` prints three lines and ends)."""

from __future__ import annotations

import codecs
import os
import sys
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, TypeVar, cast

from attncli.errors import AttnError

T = TypeVar("T")

BLOCK = 1024  # sentences whose vectors are read in one pass over a large vectors file


@dataclass(frozen=True)
class Sentence:
    text: str
    line: Optional[int]  # line number in the input (1-based), None for the TEXT argument
    index: Optional[int]  # k among non-empty lines (1-based) in a batch, else None
    error: Optional[str] = None  # why this line could not be read (the others still run)


class Sentences:
    """The sentences of a run, read lazily and once. ``single`` says there is exactly one
    (no batch numbering, no per-line report); ``prefetching(fn)`` has ``fn`` called with
    each block of up to :data:`BLOCK` sentences (the readable ones) before they are worked
    on, so a large vectors file is read once per block rather than once per sentence."""

    def __init__(self, items: Iterable[Sentence], single: bool) -> None:
        self._items: Optional[Iterable[Sentence]] = items
        self.single = single
        self._before: Optional[Callable[[list[Sentence]], None]] = None

    def prefetching(self, before: Callable[[list[Sentence]], None]) -> "Sentences":
        self._before = before
        return self

    def __len__(self) -> int:
        if not isinstance(self._items, list):
            raise TypeError("the sentences of stdin are a stream: use .single")
        return len(self._items)

    def __iter__(self) -> Iterator[Sentence]:
        if self._items is None:
            raise RuntimeError("the sentences of stdin are read once; iterate them once")
        items = self._items
        if not isinstance(items, list):  # a stream: once
            self._items = None
        if self._before is None or self.single:
            yield from items
            return
        block: list[Sentence] = []
        for s in items:
            block.append(s)
            if len(block) == BLOCK:
                yield from self._flush(block)
                block = []
        yield from self._flush(block)

    def _flush(self, block: list[Sentence]) -> list[Sentence]:
        readable = [s for s in block if s.error is None]
        if len(readable) > 1 and self._before is not None:
            self._before(readable)
        return block


def check_encoding(encoding: str) -> None:
    try:
        "".encode(encoding)
    except LookupError:
        raise AttnError(f"--encoding: unknown encoding {encoding!r}") from None


def ascii_compatible(encoding: str) -> bool:
    """Lines can be split on the byte 0x0a before decoding (UTF-8, Latin-1, cp1252, Shift
    JIS…), as opposed to UTF-16 or UTF-32, whose stream is decoded whole."""
    name = codecs.lookup(encoding).name
    return not name.startswith(("utf-16", "utf-32")) and "\n a".encode(encoding) == b"\n a"


def _bad(raw: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    return (
        f"not valid {encoding} (byte {raw[exc.start]:#04x} at column {exc.start + 1});"
        " give --encoding, e.g. --encoding latin-1"
    )


def decode_lines(data: bytes, encoding: str, source: str = "stdin") -> list[str]:
    """Split bytes into lines and decode them, naming the first line that fails."""
    check_encoding(encoding)
    out = []
    for number, (text, error) in enumerate(_decoded(_split(data), encoding), start=1):
        if error:
            raise AttnError(f"{source} line {number}: {error}")
        out.append(text)
    return out


def _split(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _decoded(raw_lines: Iterable[bytes], encoding: str) -> Iterator[tuple[str, Optional[str]]]:
    """(text, None) per line, or ("", why) for a line that is not valid ``encoding``; a
    byte-order mark at the start is dropped."""
    first = True
    for raw in raw_lines:
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        try:
            text = raw.decode(encoding).rstrip("\r")
        except UnicodeDecodeError as exc:
            first = False
            yield "", _bad(raw, exc, encoding)
            continue
        if first and text.startswith("\ufeff"):
            text = text[1:]
        first = False
        yield text, None


def _whole(stream: BinaryIO, encoding: str) -> Iterator[tuple[str, Optional[str]]]:
    """A stream in UTF-16 or UTF-32: decoded whole, then split into lines."""
    data = stream.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode(encoding, "replace")
        line = good.count("\n") + 1
        raise AttnError(f"stdin line {line}: not valid {encoding} (byte {data[exc.start]:#04x})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for k, t in enumerate(lines):
        yield (t[1:] if k == 0 and t.startswith("\ufeff") else t).rstrip("\r"), None


def _numbered(decoded: Iterator[tuple[str, Optional[str]]]) -> Iterator[tuple[int, str, Optional[str]]]:
    """(line number, text, error) for the non-empty lines."""
    for number, (text, error) in enumerate(decoded, start=1):
        if text != "" or error:
            yield number, text, error


def argument_text(text: str, encoding: str) -> str:
    """TEXT as given. Bytes of the argument that were not valid in the locale's encoding
    (kept by Python as lone surrogates) are decoded with ``encoding``, or refused by name."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        check_encoding(encoding)
        raw = os.fsencode(text)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise AttnError(f"TEXT: {_bad(raw, exc, encoding)}") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_sentences(text: Optional[str], encoding: str = "utf-8", stdin: Optional[BinaryIO] = None) -> Sentences:
    """TEXT itself, or (TEXT is ``-`` or absent while stdin is not a terminal) one
    sentence per non-empty line of stdin, read as a stream. Several lines make a batch,
    numbered k = 1… among the non-empty lines; empty lines are skipped. A line that is
    not valid ``encoding`` is reported as that line's error; the others still run."""
    if text is not None and text != "-":
        return Sentences([Sentence(argument_text(text, encoding), None, None)], single=True)
    stream = stdin if stdin is not None else sys.stdin
    if stream is None or (text is None and stream.isatty()):
        raise AttnError("no text: give TEXT, or pipe sentences on stdin (one per line)")
    check_encoding(encoding)
    binary = cast(BinaryIO, getattr(stream, "buffer", stream))  # a text stream's bytes underneath
    if ascii_compatible(encoding):
        lines = _numbered(_decoded(iter(binary.readline, b""), encoding))
    else:
        lines = _numbered(_whole(binary, encoding))
    first = next(lines, None)
    if first is None:
        raise AttnError("stdin is empty: pipe one sentence per line")
    second = next(lines, None)
    if second is None:
        number, line, error = first
        if error:
            raise AttnError(f"stdin line {number}: {error}")
        return Sentences([Sentence(line, number, None)], single=True)

    def batch() -> Iterator[Sentence]:
        for k, (number, line, error) in enumerate(_chain(first, second, lines), start=1):
            yield Sentence(line, number, k, error)

    return Sentences(batch(), single=False)


def _chain(first: T, second: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield second
    yield from rest
