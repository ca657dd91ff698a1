"""Long inputs: `run -r 512 -H 8` at n = 256 … 4,096 tokens, whole process and in process,
against floors measured in the same run (interleaved):

- `--no-plot --quiet`: time and peak memory against torch's `MultiheadAttention(512, 8)`
  with `need_weights=True, average_attn_weights=False` (every head's map), whole process
  including `import torch`; the peak is also set against the float32 maps the run keeps.
- attention alone, in this process: `attend_heads` (+ the projections) against torch's
  forward with weights (torch's default threads), after one unmeasured call of each.
- `--json --no-plot` (`-H 2`: 4·n² numbers): against a process writing float32 arrays of
  the same shapes with a plain row loop (`"%.9g"` per number, one write per row).
- `--npz --no-plot`: against a process saving float32 arrays of the same shapes with
  `np.savez`; the peak is set against the arrays' bytes.

    python bench/bench_long.py [--sizes 256,1024,4096] [--repeats 3] [--skip json,npz]

Prints one line per case: medians, ratios and the targets of issue 17.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import attncli_cmd, pair

MiB = 1 << 20
WORDS = "the cat sat on mat dog a ran blue green house tree river stone light".split()

TORCH = """
import sys, torch
n = int(sys.argv[1]); torch.manual_seed(0)
m = torch.nn.MultiheadAttention(512, 8)
x = torch.randn(n, 1, 512)
with torch.no_grad():
    out, w = m(x, x, x, need_weights=True, average_attn_weights=False)
print(float(w.sum()))
"""

ROW_LOOP = """
import sys, numpy as np
n, H = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
out = sys.stdout
for name in ("A", "A_prime"):
    for h in range(H):
        M = rng.random((n, n), dtype=np.float32)
        row = "[" + ", ".join(["%.9g"] * n) + "]"
        for r in M.astype(np.float64).tolist():
            out.write(row % tuple(r))
            out.write(", ")
out.write("\\n")
"""

SAVEZ = """
import sys, numpy as np
n, H, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
maps = {k: rng.random((H, n, n), dtype=np.float32) for k in ("A", "A_prime")}
small = {k: rng.random((H, 64, n), dtype=np.float32) for k in ("Q", "K", "V", "O_heads")}
np.savez(path, **maps, **small)
"""


def text(n: int) -> str:
    rng = random.Random(0)
    return " ".join(rng.choice(WORDS) + str(i % 50) for i in range(n))


def in_process(n: int, repeats: int) -> tuple[float, float, int]:
    """Medians of attncli's attention (projections + attend_heads, float32, A' only)
    and torch's MHA forward with every head's weights, interleaved in this process after
    one unmeasured call of each (the first touch of fresh memory is measured by the
    whole-process cases); torch runs with its default thread count, returned."""
    import numpy as np
    import torch

    from attncli.core.attention import multi_head
    from attncli.core.embed import random_weights

    W = {k: (w.astype(np.float32) if w is not None else None) for k, w in random_weights(512, 8, 64, 64, 0).items()}
    I = np.random.default_rng(0).standard_normal((512, n)).astype(np.float32)
    m, x = torch.nn.MultiheadAttention(512, 8), torch.randn(n, 1, 512)

    def ours() -> float:
        t = time.perf_counter()
        multi_head(I, W["Wq"], W["Wk"], W["Wv"], W["Wo"], keep_scores=False)
        return time.perf_counter() - t

    def theirs() -> float:
        t = time.perf_counter()
        with torch.no_grad():
            m(x, x, x, need_weights=True, average_attn_weights=False)
        return time.perf_counter() - t

    ours(), theirs()
    a, b = [], []
    for _ in range(repeats):
        a.append(ours())
        b.append(theirs())
    return statistics.median(a), statistics.median(b), torch.get_num_threads()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024,2048,4096")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    me = attncli_cmd()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            sentence = text(n)
            base = [*me, "run", sentence, "-r", "512", "--max-tokens", str(n + 16), "--no-plot", "--quiet"]
            reps = args.repeats if n <= 2048 else max(1, args.repeats - 1)
            if "run" not in skip:
                maps = 8 * n * n * 4 / MiB  # A' only: no view reads A
                (ot, om), (tt, tm) = pair([*base, "-H", "8"], [py, "-c", TORCH, str(n)], reps)
                print(
                    f"n={n:5d} run --no-plot: {ot:6.2f} s, {om:6.0f} MiB | torch MHA {tt:6.2f} s, {tm:6.0f} MiB"
                    f" -> time {ot / tt:.2f}x (target <= 1.0), peak {om:.0f} MiB vs 1.2 x maps + 150"
                    f" = {1.2 * maps + 150:.0f} MiB ({(om - 150) / maps:.2f}x maps)",
                    flush=True,
                )
            if "attention" not in skip:
                ours, theirs, threads = in_process(n, reps + 2)
                print(
                    f"n={n:5d} attention in process: {ours:.3f} s | torch forward {theirs:.3f} s"
                    f" ({threads} threads) -> {ours / theirs:.2f}x (target <= 1.5)",
                    flush=True,
                )
            if "json" not in skip:
                (ot, om), (tt, tm) = pair([*base, "-H", "2", "--json"], [py, "-c", ROW_LOOP, str(n), "2"], reps)
                print(
                    f"n={n:5d} run --json -H 2: {ot:6.2f} s, {om:6.0f} MiB | row loop {tt:6.2f} s, {tm:6.0f} MiB"
                    f" -> {ot / tt:.2f}x (target <= 1.5)",
                    flush=True,
                )
            if "npz" not in skip:
                path = str(Path(tmp) / "a.npz")
                arrays = (2 * 8 * n * n + 4 * 8 * 64 * n) * 4 / MiB
                (ot, om), (tt, tm) = pair(
                    [*base, "-H", "8", "--npz", path], [py, "-c", SAVEZ, str(n), "8", path + ".floor.npz"], reps
                )
                print(
                    f"n={n:5d} run --npz -H 8: {ot:6.2f} s, {om:6.0f} MiB | np.savez {tt:6.2f} s, {tm:6.0f} MiB"
                    f" -> time {ot / tt:.2f}x (target <= 1.2), peak {om / arrays:.2f}x the {arrays:.0f} MiB of"
                    " arrays (target <= 1.3)",
                    flush=True,
                )
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
