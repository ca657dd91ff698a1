"""One self-contained, offline HTML page of attention results (``--html FILE``).

The page is this module's template with ``page.css`` and ``page.js`` (package data, written
for this page, no library) inlined and the results embedded as JSON: nothing is fetched, no
CDN, font, script, style or image, so it works opened from disk and in a notebook's iframe.

Data, compactly: each head's ``A'`` is quantised to 8 bits, ``value = lo + byte · scale / 255``
(``lo = 0`` and ``scale = 1`` for weights in [0, 1], so any shown weight is within 0.002 of
the true one), laid out as the notes' matrix (keys i down, queries j across: byte
``i · n + j``), deflated (zlib, read back with the browser's own DecompressionStream) and
base64-encoded, one string per head so the page inflates only the heads it shows.

Token text, the input text and config values are data: they travel inside JSON (with ``<``,
``>`` and ``&`` escaped) and the script only ever sets ``textContent``.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import zlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from attncli.core.result import AttentionResult
from attncli.errors import AttnError
from attncli.files import atomic_open

HEAD_COLOURS = (  # matplotlib's tab10, as the line figures: head h gets HEAD_COLOURS[(h - 1) % 10]
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
RAW_LIMIT = 1 << 16  # smaller stacks are stored without deflate


@lru_cache(maxsize=1)
def asset(name: str) -> str:
    """``page.js`` or ``page.css``, shipped beside this module."""
    return resources.files("attncli.html").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def viridis_lut() -> str:
    """The PNG heatmaps' colour map as 256 RGB triples, base64 (768 bytes)."""
    import matplotlib

    rgb = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, 256))[:, :3]
    return base64.b64encode(np.round(rgb * 255).astype(np.uint8).tobytes()).decode("ascii")


def default_floor(n: int) -> float:
    """Weights stored as 0 below this: none up to 128 tokens; above, 0.005 (2.5/n at 512),
    which keeps 12 layers × 12 heads × 512 tokens near 1 MB instead of 4–8 MB of 8-bit noise."""
    return 0.0 if n <= 128 else 0.005


def quantise(M: np.ndarray, floor: float = 0.0) -> tuple[bytes, float, float, float]:
    """8 bits of one n×n matrix: (bytes, lo, scale, largest value); value = lo + b·scale/255.
    Values under ``floor`` (weights in [0, 1] only) are stored as 0."""
    M = np.nan_to_num(np.asarray(M, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(min(M.min(initial=0.0), 0.0)), float(M.max(initial=0.0))
    scale = 1.0 if lo == 0.0 and hi <= 1.0 else max(hi - lo, 1e-12)
    b = np.clip(np.round((M - lo) / scale * 255.0), 0, 255).astype(np.uint8)
    if floor > 0 and scale == 1.0:
        b[M < floor] = 0
    return b.tobytes(), lo, scale, hi


def _plain(value: Any) -> Any:
    """A setting or config value as JSON can hold it (anything else as its text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return str(value)


def source(result: AttentionResult) -> tuple[str, list[list[Any]]]:
    """What produced the result: ("model", checkpoint and config) or ("run", settings)."""
    if result.checkpoint is not None:
        c = result.checkpoint
        rows = [["checkpoint", c.name], ["path", c.path], ["model type", c.model_type]]
        rows += [[k, _plain(v)] for k, v in sorted(c.config.items()) if not isinstance(v, (dict, list))]
        return "model", rows
    if result.settings is not None:
        return "run", [[k, _plain(v)] for k, v in dataclasses.asdict(result.settings).items()]
    return "run", []


def trace(result: AttentionResult) -> list[list[str]]:
    """The dimension trace as the terminal shows it (:func:`attncli.core.trace.trace`, heads
    with the same shapes once): [matrix = formula, symbolic shape, numeric shape]."""
    from attncli.core.trace import collapse_heads, shape_text
    from attncli.core.trace import trace as steps_of

    steps, same = collapse_heads(steps_of(result))
    rows = []
    for s in steps:
        symbol = s.symbol if s.head is None else (f"{s.symbol}_h" if same else f"{s.symbol}_{s.head}")
        rows.append([f"{symbol} = {s.formula}", s.symbolic, shape_text(s.shape)])
    return rows


def sentence_data(result: AttentionResult, floor: Optional[float] = None) -> dict[str, Any]:
    """One result as the page reads it (``floor``: see :func:`default_floor`)."""
    L, H = len(result.layers), len(result.heads)
    n = result.n
    floor = default_floor(n) if floor is None else floor
    if result.A_prime.shape != (L, H, n, n):
        raise AttnError(f"A′ has shape {result.A_prime.shape}, expected {(L, H, n, n)}", code=1)
    raw = L * H * n * n <= RAW_LIMIT
    data, lo, scale, top = [], [], [], []
    for li in range(L):
        row = [quantise(result.A_prime[li, hi], floor) for hi in range(H)]
        data.append([base64.b64encode(b if raw else zlib.compress(b, 6)).decode("ascii") for b, *_ in row])
        lo.append([x[1] for x in row])
        scale.append([x[2] for x in row])
        top.append([x[3] for x in row])
    kind, rows = source(result)
    d = result.dims
    return {
        "text": result.text,
        "tokens": list(result.tokens.tokens),
        "special": [bool(s) for s in (result.tokens.special or [False] * n)],
        "n": n,
        "layers": list(result.layers),
        "heads": list(result.heads),
        "model_layers": d.layers,
        "model_heads": d.heads,
        "kv_heads": d.kv_heads,
        "causal": bool(result.causal),
        "norm": result.norm,
        "kind": kind,
        "source": rows,
        "trace": trace(result),
        "warnings": list(result.warnings),
        "enc": "raw" if raw else "deflate",
        "floor": floor if all(x == 1.0 for r in scale for x in r) else 0.0,
        "lo": lo,
        "scale": scale,
        "max": top,
        "data": data,
    }


def embed_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no "</script>", no "<!--", whatever the text."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _title(results: Sequence[AttentionResult]) -> str:
    first = results[0].text.strip().replace("\n", " ")
    short = first if len(first) <= 60 else first[:59] + "…"
    more = f" (+{len(results) - 1} more)" if len(results) > 1 else ""
    return f"attncli — {short}{more}"


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data: blob:; connect-src data: blob:">
<meta name="generator" content="attncli">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<noscript>This page draws attention with JavaScript; please allow scripts for this file.</noscript>
<script type="application/json" id="attn-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def html_page(results: Sequence[AttentionResult], *, floor: Optional[float] = None) -> str:
    """The whole page for one result, or several (a batch: one page with a sentence picker).
    ``floor``: weights stored as 0 below it (default: none up to 128 tokens, else 0.005)."""
    results = list(results)
    if not results:
        raise AttnError("--html: there is no result to show", code=1)
    payload = {
        "palette": list(HEAD_COLOURS),
        "lut": viridis_lut(),
        "sentences": [sentence_data(r, floor) for r in results],
    }
    return TEMPLATE.format(
        title=html.escape(_title(results)),
        css=asset("page.css"),
        js=asset("page.js"),
        data=embed_json(payload),
    )


def write_html(results: Sequence[AttentionResult], path: str | Path, *, floor: Optional[float] = None) -> Path:
    """Write the page whole or not at all; return its path."""
    page = html_page(results, floor=floor)
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fh.write(page.encode("utf-8"))
    return path


def notebook_html(results: Sequence[AttentionResult] | AttentionResult, height: int = 720) -> str:
    """The page in an ``<iframe srcdoc>`` for Jupyter (``_repr_html_``): isolated from the
    notebook's own scripts and styles, still without any network."""
    if isinstance(results, AttentionResult):
        results = [results]
    page = html.escape(html_page(results), quote=True)
    return (
        f'<iframe srcdoc="{page}" style="width:100%;height:{int(height)}px;border:0" '
        'sandbox="allow-scripts" title="attncli attention"></iframe>'
    )
