"""Where the text comes from: the TEXT argument, or stdin one sentence per line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import BinaryIO, Optional

from attncli.errors import AttnError


@dataclass(frozen=True)
class Sentence:
    text: str
    line: Optional[int]  # line number in the input (1-based), None for the TEXT argument
    index: Optional[int]  # k among non-empty lines (1-based) in a batch, else None


def decode_lines(data: bytes, encoding: str, source: str = "stdin") -> list[str]:
    """Split bytes into lines and decode them, naming the first line that fails."""
    try:
        "".encode(encoding)
    except LookupError:
        raise AttnError(f"--encoding: unknown encoding {encoding!r}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode(encoding).rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise AttnError(
                f"{source} line {number}: not valid {encoding} (byte {raw[exc.start]:#04x} at column"
                f" {exc.start + 1}); give --encoding, e.g. --encoding latin-1"
            ) from None
    return out


def read_sentences(text: Optional[str], encoding: str = "utf-8", stdin: Optional[BinaryIO] = None) -> list[Sentence]:
    """TEXT itself, or (TEXT is ``-`` or absent while stdin is not a terminal) one
    sentence per non-empty line of stdin. Several lines make a batch, numbered k = 1…
    among the non-empty lines; empty lines are skipped."""
    if text is not None and text != "-":
        return [Sentence(text, None, None)]
    stream = stdin if stdin is not None else sys.stdin
    if stream is None or (text is None and stream.isatty()):
        raise AttnError("no text: give TEXT, or pipe sentences on stdin (one per line)")
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    lines = decode_lines(raw, encoding)
    numbered = [(i, line) for i, line in enumerate(lines, start=1) if line != ""]
    if not numbered:
        raise AttnError("stdin is empty: pipe one sentence per line")
    if len(numbered) == 1:
        return [Sentence(numbered[0][1], numbered[0][0], None)]
    return [Sentence(line, number, k) for k, (number, line) in enumerate(numbered, start=1)]
