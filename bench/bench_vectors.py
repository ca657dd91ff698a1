"""Looking up 20 tokens in a 200,000 x 300 GloVe-format text file.

    python bench/bench_vectors.py [--keep]

The floor, measured in the same run: reading the same file line by line in Python
and doing nothing else. attncli scans the file in 8 MB chunks and parses only the
rows of the wanted words.              targets: time <= 2x the floor,
                                                peak memory < 100 MB above the interpreter
The file (~550 MB) is generated in a temporary folder and removed afterwards.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROWS, DIM = 200_000, 300
WANTED = [f"w{k}" for k in range(0, ROWS, ROWS // 20)]

CHILD_FLOOR = """
import resource, sys, time
t = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        pass
print(time.perf_counter() - t, 0)
"""

CHILD_ATTNCLI = """
import resource, sys, time
from pathlib import Path
from attncli.core.vectors import scan_text
import numpy
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
found, r = scan_text(Path(sys.argv[1]), sys.argv[2].split(","))
elapsed = time.perf_counter() - t
assert len(found) == 20 and r == 300, (len(found), r)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(elapsed, (peak - base) / 1024)
"""


def generate(path: Path) -> None:
    rng = np.random.default_rng(0)
    block = [" ".join(f"{x:.6f}" for x in row) for row in rng.standard_normal((1000, DIM))]
    with open(path, "w") as fh:
        for k in range(ROWS):
            fh.write(f"w{k} {block[k % 1000]}\n")


def run(code: str, *args: str) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    t, mem = out.split()
    return float(t), float(mem)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "glove.200k.300d.txt"
        generate(path)
        print(f"file: {path.stat().st_size / 1e6:.0f} MB, {ROWS} rows x {DIM}")
        floors, ours, mems = [], [], []
        for _ in range(3):
            floors.append(run(CHILD_FLOOR, str(path))[0])
            t, m = run(CHILD_ATTNCLI, str(path), ",".join(WANTED))
            ours.append(t)
            mems.append(m)
        f, o = sorted(floors)[1], sorted(ours)[1]
        print(f"floor (line-by-line read): {f * 1000:.0f} ms")
        print(f"attncli look-up of 20 tokens: {o * 1000:.0f} ms -> ratio {o / f:.2f}  (target <= 2)")
        print(f"peak memory above the interpreter: {max(mems):.0f} MB  (target < 100)")
