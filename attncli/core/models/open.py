"""A checkpoint from a path: a Hugging Face folder, or a GGUF file (read under the same
tensor names, its tokenizer rebuilt from the file's metadata). Either way the checkpoint
carries its tokenizer: ``ck.tokenizer()``."""

from __future__ import annotations

from pathlib import Path

from attncli.core.models.checkpoint import Checkpoint, load_folder


def load(path: str | Path) -> Checkpoint:
    path = Path(path)
    if path.is_file():
        from attncli.core.models.gguf import is_gguf, load_gguf

        if is_gguf(path):  # it carries its tokenizer, rebuilt from the file's metadata
            return load_gguf(path)
    return load_folder(path)
