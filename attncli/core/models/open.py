"""A checkpoint from a path: a Hugging Face folder, or a GGUF file (read under the same
tensor names, its tokenizer rebuilt from the file's metadata)."""

from __future__ import annotations

from pathlib import Path

from attncli.core.models.checkpoint import Checkpoint, load_folder


def load(path: str | Path) -> Checkpoint:
    path = Path(path)
    if path.is_file():
        from attncli.core.models.gguf import is_gguf, load_gguf_with_tokenizer

        if is_gguf(path):  # its tokenizer registered under the file's path for tokenize()
            return load_gguf_with_tokenizer(path)
    return load_folder(path)
