"""Every number visible: wide tables split into blocks of columns at any width, and a
pipe gets a generous width; --values labels A as the scaled scores and shows the W's."""

from __future__ import annotations

import io
import re

import pytest
from conftest import script
from rich.console import Console

from attncli.core import pipeline
from attncli.core.explain import explain
from attncli.core.settings import Settings
from attncli.core.stats import head_stats
from attncli.show.explain import print_explanation
from attncli.show.tables import format_number, print_result

SENTENCE = "The quick brown fox jumps over the lazy dog while the cat sat on mats"  # 15 tokens
ALLOWED = ("[a^1 … a^n]", "[O_1; …; O_H]")  # formulas that are written with an ellipsis


def no_elision(text: str) -> None:
    for allowed in ALLOWED:
        text = text.replace(allowed, "")
    assert "…" not in text, [line for line in text.splitlines() if "…" in line][:3]


def render(width: int, draw) -> str:
    buf = io.StringIO()
    draw(Console(file=buf, width=width, color_system=None, highlight=False))
    return buf.getvalue()


@pytest.mark.parametrize("width", [60, 80, 200])
def test_values_never_elide_a_number_or_header(width):
    result = pipeline.run(SENTENCE, Settings(heads=2, causal=True))
    out = render(width, lambda c: print_result(c, result, values=True, stats=head_stats(result)))
    no_elision(out)
    assert max(len(line) for line in out.splitlines()) <= width
    for M in (result.A_prime[0, 1], result.weights["Wk"][1]):  # every number appears whole
        for x in M.ravel():
            assert format_number(x) in out
    for token in ("quick", "brown", "jumps", "while", "mats"):
        assert token in out


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_explain_never_elides_a_number(width):
    result = pipeline.run("The cat sat on the mat .", Settings(dim=16))
    e = explain(result, 3, 1)
    out = render(width, lambda c: print_explanation(c, e))
    no_elision(out)
    assert max(len(line) for line in out.splitlines()) <= width
    for x in [*e.q_j, *e.b_j, *e.alpha, *e.alpha_prime]:
        assert format_number(x) in out


def test_values_in_a_pipe_are_whole(monkeypatch):
    monkeypatch.delenv("COLUMNS")  # a file or pipe, as a shell leaves it
    done = script("run", SENTENCE, "--values", "--no-plot")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    no_elision(out)
    assert re.search(r"while .* the₂ .* mats", out)  # one block: 200 columns, not Rich's 80
    assert max(len(line) for line in out.splitlines()) > 100


def test_values_label_the_scaled_masked_scores_and_print_the_weights():
    result = pipeline.run("The cat sat .", Settings(heads=2, causal=True))
    out = " ".join(render(400, lambda c: print_result(c, result, values=True)).split())
    assert "A_1 = K_1ᵀ Q_1 / √q (n×n)" in out
    assert "−∞" in out and "masked keys (i > j) are −∞" in out
    for name in ("W^q_1", "W^k_2", "W^v_2", "W^o"):
        assert name in out
    plain = " ".join(
        render(400, lambda c: print_result(c, pipeline.run("a b", Settings(scale=False)), values=True)).split()
    )
    assert "A = Kᵀ Q (n×n)" in plain


def test_many_heads_print_one_trace_block():
    result = pipeline.run("The cat sat on the mat .", Settings(heads=12, dim=48))
    out = render(100, lambda c: print_result(c, result))
    flat = " ".join(out.split())
    assert "heads h = 1–12 have the same shapes" in flat
    assert "Q_h" in out and "Q_7" not in out
    trace_lines = out.split("I → Q,K")[0].splitlines()
    assert len(trace_lines) < 30
