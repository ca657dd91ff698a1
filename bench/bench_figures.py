"""12 heads of a 64-token sentence to PNGs: attncli's renderer against the plain
`seaborn.heatmap` + `savefig` loop that tutorials use, measured in the same run.

    pip install seaborn   # a bench-only dependency
    python bench/bench_figures.py

Both sides draw the same 12 matrices with token labels on both axes, a colour bar and
a title, at the same size and dpi, after their imports (only the drawing is timed).
attncli draws the frame once and paints each head's cells into it; several processes
share the heads where the machine has the cores.

Both wall time and CPU time are compared: CPU time is user + system time of this process
and of every drawing process it started and waited for (getrusage SELF + CHILDREN), so
sharing the work out cannot hide work.      targets: >= 8x faster by wall, >= 6x by CPU
"""

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from attncli.core.pipeline import run
from attncli.core.settings import Settings
from attncli.figures.heatmap import forget
from attncli.figures.select import figures
from attncli.figures.style import Style
from attncli.view import Shown

N, H = 64, 12
WORDS = "the a cat dog sat ran on under mat rug big small red quick brown fox".split()


def seaborn_loop(mats, tokens, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    for h, M in enumerate(mats):
        fig, ax = plt.subplots(figsize=(11.7, 10.9))
        sns.heatmap(M, xticklabels=tokens, yticklabels=tokens, cmap="viridis", square=True, ax=ax)
        ax.set_title(f"head {h + 1}")
        ax.set_xlabel("query j")
        ax.set_ylabel("key i")
        fig.savefig(out / f"head_{h + 1}.png", dpi=150)
        plt.close(fig)


def attncli_render(result, tokens, out: Path, grid: bool) -> None:
    forget()  # nothing kept from the run before: as a new `attncli run` process starts
    figures(Shown(result), out, Style(grid=grid))  # what `attncli run` draws


def cpu() -> float:
    """User + system seconds of this process and of its children that have ended."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, *args) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    with tempfile.TemporaryDirectory() as d:
        c, t = cpu(), time.perf_counter()
        fn(*args, Path(d)) if len(args) == 2 else fn(args[0], args[1], Path(d), args[2])
        return time.perf_counter() - t, cpu() - c


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    text = " ".join(rng.choice(WORDS) for _ in range(N))
    result = run(text, Settings(heads=H, dim=48))
    mats = list(result.A_prime[0])
    tokens = result.tokens.tokens
    import matplotlib
    import seaborn  # noqa: F401  (imports outside the timing)

    matplotlib.use("Agg")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    sea, ours, ours_grid = [], [], []
    for _ in range(3):
        sea.append(timed(seaborn_loop, mats, tokens))
        ours.append(timed(attncli_render, result, tokens, False))
        ours_grid.append(timed(attncli_render, result, tokens, True))

    def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)

    (s, sc), (o, oc), (g, gc) = medians(sea), medians(ours), medians(ours_grid)
    print(f"seaborn.heatmap loop, {H} heads x {N} tokens: {s * 1000:.0f} ms wall, {sc * 1000:.0f} ms CPU")
    for name, w, c in (("heads only:       ", o, oc), ("heads + heads.png:", g, gc)):
        print(f"attncli {name} {w * 1000:.0f} ms wall -> {s / w:.1f}x faster; {c * 1000:.0f} ms CPU -> {sc / c:.1f}x")
    print("targets: >= 8x by wall, >= 6x by CPU")
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
