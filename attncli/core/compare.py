"""The same sentence under several settings (normalisations, temperatures, masks): one
result per setting, for views that set them side by side."""

from __future__ import annotations

from dataclasses import replace
from itertools import product
from typing import TYPE_CHECKING, Any, Optional

from attncli.errors import AttnError

if TYPE_CHECKING:
    from attncli.core.result import AttentionResult
    from attncli.core.settings import Settings

VARIED = ("norm", "temperature", "causal")


def parse_list(option: str, spec: str) -> list[Any]:
    """``softmax,relu`` → ["softmax", "relu"]; ``0.5,1,2`` → floats; ``off,on`` → bools."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise AttnError(f"--{option}: give one or more values separated by commas")
    if option == "temperature":
        try:
            return [float(p) for p in parts]
        except ValueError:
            raise AttnError(f"--temperature: expected numbers like 0.5,1,2, not {spec!r}") from None
    if option == "causal":
        words = {"off": False, "on": True, "false": False, "true": True, "no": False, "yes": True}
        bad = [p for p in parts if p.lower() not in words]
        if bad:
            raise AttnError(f"--causal: expected off and/or on, not {bad[0]!r}")
        return [words[p.lower()] for p in parts]
    return parts


def settings_grid(base: Settings, lists: dict[str, list[Any]]) -> list[tuple[str, Settings]]:
    """Every combination of the listed values, each with a label naming what varies."""
    names = [k for k in VARIED if k in lists]
    varying = [k for k in names if len(lists[k]) > 1]
    out = []
    for values in product(*(lists[k] for k in names)):
        chosen = dict(zip(names, values))
        s = replace(base, **chosen)
        s.check()
        out.append((label(chosen, varying), s))
    return out


def label(chosen: dict[str, Any], varying: list[str]) -> str:
    parts = []
    for k in varying or list(chosen):
        v = chosen[k]
        parts.append(
            f"T = {v:g}" if k == "temperature" else ("causal" if v else "not causal") if k == "causal" else str(v)
        )
    return ", ".join(parts)


def compare(
    text: str, base: Settings, lists: dict[str, list[Any]], progress: Optional[Any] = None
) -> list[tuple[str, AttentionResult]]:
    """One result per combination of settings, same tokens, vectors and weights."""
    from attncli.core import pipeline

    return [(name, pipeline.run(text, s, progress)) for name, s in settings_grid(base, lists)]
