"""The dimension trace: every matrix of a result with its symbolic and numeric shape,
in pipeline order. One function for every command; views print or export it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from attncli.core.result import AttentionResult


@dataclass(frozen=True)
class Step:
    name: str  # I, Wq, Q, A, A_prime, O … (the notes' symbols, ASCII for machines)
    symbol: str  # how the notes write it: W^q, A', …
    formula: str
    shape: tuple[int, ...]
    symbolic: str
    head: Optional[int] = None  # 1-based head number, None for shared matrices

    def as_dict(self) -> dict[str, Any]:
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


def scores_formula(result: AttentionResult) -> str:
    s = result.settings
    scaled = " / √q" if s is None or s.scale else ""
    return f"Kᵀ Q{scaled}" + (", causal mask" if result.causal else "")


def head_steps(result: AttentionResult, label: Optional[int]) -> list[Step]:
    """One head's matrices (``label`` is its number, None when there is one head)."""
    d = result.dims
    r, q, v, n = d.r, d.q, d.v, d.n
    return [
        Step("Wq", "W^q", "query weights", (q, r), "q×r", label),
        Step("Wk", "W^k", "key weights", (q, r), "q×r", label),
        Step("Wv", "W^v", "value weights", (v, r), "v×r", label),
        Step("Q", "Q", "W^q I", (q, n), "q×n", label),
        Step("K", "K", "W^k I", (q, n), "q×n", label),
        Step("V", "V", "W^v I", (v, n), "v×n", label),
        Step("A", "A", scores_formula(result), (n, n), "n×n", label),
        Step("A_prime", "A'", f"{result.norm}(A), column by column", (n, n), "n×n", label),
        Step("O", "O", "V A'", (v, n), "v×n", label),
    ]


def run_trace(result: AttentionResult) -> list[Step]:
    """A run: the input, each head, then the merge through W^o."""
    d = result.dims
    steps: list[Step] = []
    if result.P is not None:
        steps.append(Step("E", "E", "token embeddings a^i", (d.r, d.n), "r×n"))
        steps.append(Step("P", "P", "sinusoidal positions", (d.r, d.n), "r×n"))
        steps.append(Step("I", "I", "E + P = [a^1 … a^n]", (d.r, d.n), "r×n"))
    else:
        steps.append(Step("I", "I", "[a^1 … a^n]", (d.r, d.n), "r×n"))
    for h in result.heads:
        steps.extend(head_steps(result, h if d.heads > 1 else None))
    if result.O_concat is not None:
        steps.append(Step("O_concat", "[O_1; …; O_H]", "heads stacked", (d.heads * d.v, d.n), "H·v×n"))
        if result.weights.get("Wo") is not None:
            steps.append(Step("Wo", "W^o", "output weights", (d.r, d.heads * d.v), "r×H·v"))
            steps.append(Step("O", "O", "W^o [O_1; …; O_H]", (d.r, d.n), "r×n"))
    return steps


def model_trace(result: AttentionResult) -> list[Step]:
    """A checkpoint: one block's matrices, the same in every layer and head. With grouped
    keys and values (G < H), K and V are G×q×n: query heads share them in groups."""
    d = result.dims
    r, v, n, H, G = d.r, d.v, d.n, d.heads, d.groups
    grouped = G != H
    kv = f", one per group of {H // G} heads" if grouped else ""
    steps = [Step("I", "I", "embeddings of the tokens", (r, n), "r×n")]
    for step in head_steps(result, None):
        if step.name in ("Wq", "Wk", "Wv"):
            step = Step(
                step.name, step.symbol, "per head" + (kv if step.name != "Wq" else ""), step.shape, step.symbolic
            )
        if grouped and step.name in ("K", "V"):
            step = Step(step.name, step.symbol, step.formula + kv, (G, *step.shape), "G×" + step.symbolic)
        if step.name == "O":
            step = Step("O_head", "O_h", "V A'", step.shape, step.symbolic)
        steps.append(step)
    steps.append(Step("Wo", "W^o", "attention output dense", (r, H * v), "r×H·v"))
    steps.append(Step("O", "O", "after the last block", (r, n), "r×n"))
    return steps


def trace(result: AttentionResult) -> list[Step]:
    """Every matrix in pipeline order."""
    return model_trace(result) if result.is_model else run_trace(result)


def collapse_heads(steps: list[Step]) -> tuple[list[Step], int]:
    """The steps with the per-head ones kept once when every head has the same matrices
    and shapes; the number of heads folded (0 when nothing was folded)."""
    heads = sorted({s.head for s in steps if s.head is not None})
    if len(heads) < 2:
        return steps, 0
    per_head = [[(s.name, s.shape, s.formula) for s in steps if s.head == h] for h in heads]
    if any(p != per_head[0] for p in per_head[1:]):
        return steps, 0
    return [s for s in steps if s.head is None or s.head == heads[0]], len(heads)


def summary(result: AttentionResult) -> tuple[str, str]:
    """The one-line trace ``r×n → q×n → n×n → v×n`` and the same with numbers."""
    d = result.dims
    r, q, v, n = d.r, d.q, d.v, d.n
    symbolic = "r×n → q×n → n×n → v×n"
    numeric = f"{r}×{n} → {q}×{n} → {n}×{n} → {v}×{n}"
    if result.O_concat is not None and result.weights.get("Wo") is not None:
        symbolic += " → r×n"
        numeric += f" → {r}×{n}"
    return symbolic, numeric
