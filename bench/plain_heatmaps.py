"""Floor for bench_run.py: the plain matplotlib script a user would write to save the
same 8 heatmaps (12 tokens) that `attncli run -H 8` saves, attention included."""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

out = sys.argv[1]
tokens = "The quick brown fox jumps over the lazy dog near the river".split()
n, r, H = len(tokens), 8, 8
rng = np.random.default_rng(0)
I = rng.standard_normal((r, n))
for h in range(H):
    Wq, Wk = rng.standard_normal((1, r)), rng.standard_normal((1, r))
    A = (Wk @ I).T @ (Wq @ I)
    P = np.exp(A - A.max(0)) / np.exp(A - A.max(0)).sum(0)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(P, cmap="viridis")
    ax.set_xticks(range(n), tokens, rotation=90)
    ax.set_yticks(range(n), tokens)
    ax.set_xlabel("query j")
    ax.set_ylabel("key i")
    ax.set_title(f"head {h + 1}")
    fig.colorbar(im)
    fig.savefig(f"{out}/head_{h + 1}.png", dpi=150)
    plt.close(fig)
