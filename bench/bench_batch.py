"""2,000 short sentences on stdin against one sentence, in the same run.

    python bench/bench_batch.py

`attncli run --json --no-plot` with 2,000 lines on stdin, against the same command with
one line. Start-up dominates a single run and the work per sentence is small, so the
2,000 should take less than 10x the time of one.               target: ratio < 10
"""

import random

from common import attncli_cmd, compare

WORDS = "the a cat dog sat ran on under mat rug big small red quick brown fox .".split()

if __name__ == "__main__":
    rnd = random.Random(0)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12))) for _ in range(2000)]
    batch = ("\n".join(lines) + "\n").encode()
    cmd = attncli_cmd() + ["run", "--json", "--no-plot"]
    compare(
        "2,000 sentences vs one (--json --no-plot)",
        cmd,
        cmd,
        stdin=batch,
        floor_stdin=(lines[0] + "\n").encode(),
        repeats=3,
        target="(target < 10)",
    )
