"""The dimension trace: every matrix of a run with its symbolic and numeric shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from attncli.core.pipeline import Result


@dataclass(frozen=True)
class Step:
    name: str  # I, Wq, Q, A, A_prime, O … (the notes' symbols, ASCII for machines)
    symbol: str  # how the notes write it: W^q, A', …
    formula: str
    shape: tuple[int, ...]
    symbolic: str
    head: Optional[int] = None  # 1-based head number, None for shared matrices

    def as_dict(self) -> dict:
        name = self.name if self.head is None else f"{self.name}_{self.head}"
        return {
            "name": name,
            "shape": list(self.shape),
            "symbolic": self.symbolic,
            "head": self.head,
            "formula": self.formula,
        }


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def head_steps(result: Result, h: int, label: Optional[int]) -> list[Step]:
    W, head = result.weights, result.heads[h]
    scale = " / √q" if result.settings.scale else ""
    norm = result.settings.norm
    mask = ", causal mask" if result.settings.causal else ""
    return [
        Step("Wq", "W^q", "query weights", W["Wq"][h].shape, "q×r", label),
        Step("Wk", "W^k", "key weights", W["Wk"][h].shape, "q×r", label),
        Step("Wv", "W^v", "value weights", W["Wv"][h].shape, "v×r", label),
        Step("Q", "Q", "W^q I", head.Q.shape, "q×n", label),
        Step("K", "K", "W^k I", head.K.shape, "q×n", label),
        Step("V", "V", "W^v I", head.V.shape, "v×n", label),
        Step("A", "A", f"Kᵀ Q{scale}{mask}", head.A.shape, "n×n", label),
        Step("A_prime", "A'", f"{norm}(A), column by column", head.A_prime.shape, "n×n", label),
        Step("O", "O", "V A'", head.O.shape, "v×n", label),
    ]


def trace(result: Result) -> list[Step]:
    """Every matrix in pipeline order: input, each head, then the merge."""
    steps: list[Step] = []
    if result.P is not None:
        steps.append(Step("E", "E", "token embeddings a^i", result.E.shape, "r×n"))
        steps.append(Step("P", "P", "sinusoidal positions", result.P.shape, "r×n"))
        steps.append(Step("I", "I", "E + P = [a^1 … a^n]", result.I.shape, "r×n"))
    else:
        steps.append(Step("I", "I", "[a^1 … a^n]", result.I.shape, "r×n"))
    H = len(result.heads)
    for h in range(H):
        steps.extend(head_steps(result, h, h + 1 if H > 1 else None))
    if result.attention.O_concat is not None:
        steps.append(Step("O_concat", "[O_1; …; O_H]", "heads stacked", result.attention.O_concat.shape, "H·v×n"))
        if result.weights.get("Wo") is not None:
            steps.append(Step("Wo", "W^o", "output weights", result.weights["Wo"].shape, "r×H·v"))
            steps.append(Step("O", "O", "W^o [O_1; …; O_H]", result.O.shape, "r×n"))
    return steps


def summary(result: Result) -> tuple[str, str]:
    """The one-line trace ``r×n → q×n → n×n → v×n`` and the same with numbers."""
    d = result.dims
    r, q, v, n = d["r"], d["q"], d["v"], d["n"]
    symbolic = "r×n → q×n → n×n → v×n"
    numeric = f"{r}×{n} → {q}×{n} → {n}×{n} → {v}×{n}"
    if result.attention.O_concat is not None and result.weights.get("Wo") is not None:
        symbolic += " → r×n"
        numeric += f" → {r}×{n}"
    return symbolic, numeric
