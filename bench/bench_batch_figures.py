"""A batch of figures: N sentences × 4 heads to PNG, per sentence, against one sentence
alone (the same command with one line), measured in the same run. The batch sends each
sentence's figures to the command's drawing pool (one warm worker per core) and keeps
computing while they are drawn; the load average is printed before and after (the
machine is shared: a busy neighbour moves the ratio).

    python bench/bench_batch_figures.py [N]        target (issue 17): per sentence ≤ 0.4×
"""

import os
import statistics
import sys
import tempfile

from common import attncli_cmd, wall

WORDS = "the cat sat on a mat while dogs ran after birds in the garden near old houses".split()


def sentences(n: int) -> bytes:
    lines = [" ".join(WORDS[(k + i) % len(WORDS)] for i in range(8 + k % 5)) for k in range(n)]
    return ("\n".join(lines) + "\n").encode()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cmd = attncli_cmd()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        wall(cmd + ["run", "-H", "4", "-q", "-o", a], sentences(1))  # warm the disk cache
        one = statistics.median(wall(cmd + ["run", "-H", "4", "-q", "-o", a], sentences(1)) for _ in range(5))
        many = statistics.median(wall(cmd + ["run", "-H", "4", "-q", "-o", b], sentences(n)) for _ in range(2))
    ratio = many / n / one
    print(
        f"{n} sentences × 4 heads: {many:.1f} s, {many / n * 1000:.0f} ms per sentence;"
        f" one sentence alone {one * 1000:.0f} ms -> per-sentence ratio {ratio:.2f}  (target <= 0.4)"
    )
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
