"""The offline HTML page at 12 layers × 12 heads × 512 tokens: size and time to first paint.

Targets (issue 15): page under 2 MB, first paint under 1 s in headless Chromium. Two inputs:

- ``structured``: heads shaped like a trained encoder's (previous / next / same token, a
  [CLS]/[SEP] sink, a local window, a few content heads), logits plus noise, softmax per
  column. Most weights are near 0, as in real checkpoints at 512 tokens.
- ``diffuse``: seeded random weights (attncli run's kind), nearly uniform columns: the worst
  case for the size, since 8-bit noise does not compress.

Prints bytes, Python time to write the page, first contentful paint (the browser's own
entry), "ready" (head view with every head's lines drawn), a layer switch and a hover.
Needs ``playwright`` and Debian's ``chromium``. Run: ``python bench/bench_html.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from results import tokens_of  # noqa: E402

from attncli.core.result import AttentionResult, Checkpoint, Dims  # noqa: E402
from attncli.html import write_html  # noqa: E402

L, H, N = 12, 12, 512
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def softmax_columns(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-2, keepdims=True))
    return e / e.sum(axis=-2, keepdims=True)


def structured(rng: np.random.Generator) -> np.ndarray:
    """L×H×N×N with a trained-looking pattern per head."""
    i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")  # key i, query j
    patterns = [
        (i == j - 1) * 8.0,  # previous token
        (i == j + 1) * 8.0,  # next token
        (i == j) * 6.0,  # same token
        ((i == 0) | (i == N - 1)) * 7.0,  # [CLS] / [SEP] sink
        np.maximum(0, 4 - np.abs(i - j)) * 1.5,  # local window
        (i % 17 == 0) * 5.0,  # "punctuation"
    ]
    out = np.empty((L, H, N, N), dtype=np.float32)
    for layer in range(L):
        for head in range(H):
            base = patterns[(layer + head) % len(patterns)]
            out[layer, head] = softmax_columns(base + rng.normal(scale=1.0, size=(N, N)))
    return out


def diffuse(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=(L, H, 64, N)) / 8
    k = rng.normal(size=(L, H, 64, N)) / 8
    return softmax_columns(np.einsum("lhqi,lhqj->lhij", k, q)).astype(np.float32)


def result(Ap: np.ndarray) -> AttentionResult:
    words = ["[CLS]"] + [f"word{k}" for k in range(N - 2)] + ["[SEP]"]
    return AttentionResult(
        text=" ".join(words[1:-1]),
        tokens=tokens_of(words, [True] + [False] * (N - 2) + [True]),
        dims=Dims(r=768, q=64, v=64, heads=H, n=N, layers=L),
        A=np.log(Ap),
        A_prime=Ap,
        layers=list(range(1, L + 1)),
        heads=list(range(1, H + 1)),
        I=np.zeros((1, N)),
        O=np.zeros((1, N)),
        checkpoint=Checkpoint(path="bench", model_type="bert", name="synthetic-12x12", config={}),
    )


def measure(page, path: Path) -> dict[str, float]:
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    out = {
        "fcp_ms": page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN"),
        "ready_ms": float(page.evaluate("document.body.dataset.paintMs")),
    }
    for name, action in (("layer_switch_ms", "ArrowDown"), ("head_switch_ms", "ArrowRight")):
        t = time.perf_counter()
        page.keyboard.press(action)
        page.wait_for_function("document.body.dataset.ready === '1'")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        out[name] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    page.hover(".tok[data-side='q'][data-t='200']")
    page.wait_for_function("document.getElementById('readout').textContent.startsWith('Query 201')")
    out["hover_ms"] = (time.perf_counter() - t) * 1000
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("bench_html: no chromium on PATH (apt-get install chromium)")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for name, make in (("structured", structured), ("diffuse", diffuse)):
            r = result(make(rng))
            path = Path(tmp) / f"{name}.html"
            t = time.perf_counter()
            write_html([r], path)
            write_s = time.perf_counter() - t
            size = path.stat().st_size
            runs = []
            for _ in range(3):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.route(
                    "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
                )
                runs.append(measure(page, path))
                context.close()
            best = {k: min(run[k] for run in runs) for k in runs[0]}
            worst = {k: max(run[k] for run in runs) for k in runs[0]}
            print(f"{name}: {L}×{H} heads × {N} tokens: page {size / 2**20:.2f} MB, written in {write_s:.2f} s")
            for k in best:
                print(f"  {k:16s} {best[k]:7.0f} – {worst[k]:7.0f}")
        browser.close()


if __name__ == "__main__":
    main()
