"""attncli: see self-attention at the terminal, in pipelines and on slides.

Library use (everything the CLI does is here)::

    from attncli import Settings, run
    result = run("The cat sat on the mat .", Settings(heads=2))
    result.A_prime[0, 0]         # layer 1, head 1: n×n, columns sum to 1

Heavy parts load on first use, so ``import attncli`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "AttnError": ".errors",
    "Settings": ".core.settings",
    "run": ".core.pipeline",
    "run_model": ".core.models.forward",
    "AttentionResult": ".core.result",
    "attend": ".core.attention",
    "multi_head": ".core.attention",
    "softmax": ".core.attention",
    "sparsemax": ".core.attention",
    "relu": ".core.attention",
    "Style": ".figures.style",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'attncli' has no attribute {name!r}")
