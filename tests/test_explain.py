"""`attncli explain`, head statistics and --mean-heads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import cli, one_error_line
from hypothesis import given, settings
from hypothesis import strategies as st

from attncli.core.explain import explain
from attncli.core.pipeline import run
from attncli.core.settings import Settings
from attncli.core.stats import entropy, one_head

SENTENCE = "The cat sat on the mat ."


@given(
    st.integers(1, 7),
    st.integers(1, 3),
    st.sampled_from(["softmax", "relu", "sparsemax"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["none", "sinusoidal"]),
    st.integers(0, 50),
)
@settings(max_examples=60, deadline=None)
def test_vector_steps_equal_the_matrix_path(query, head, norm, scale, causal, positions, seed):
    result = run(
        SENTENCE,
        Settings(heads=3, dim=12, norm=norm, scale=scale, causal=causal, positions=positions, seed=seed, float64=True),
    )
    e = explain(result, query, head)
    O, A_prime = result.O_heads[head - 1], result.A_prime[0, head - 1]
    assert e.max_difference <= 1e-12
    assert np.allclose(e.b_j, O[:, query - 1], atol=1e-12, rtol=0)
    assert np.allclose(e.alpha_prime, A_prime[:, query - 1], atol=1e-12, rtol=0)
    assert e.agrees


def test_explain_reads_well_in_100_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    ran = cli("explain", SENTENCE, "--query", "3")
    assert ran.code == 0, ran.stderr
    out = ran.stdout
    for part in (
        "Step 1",
        "q^3 = W^q a^3",
        "k^i = W^k a^i",
        "Step 2",
        "α'_3,i",
        "Step 3",
        "b^3 = Σ_i α'_{3,i} v^i",
        "Matrix perspective",
        "Kᵀ Q / √q",
        "column 3 of O equals b^3",
    ):
        assert part in out, part
    assert "✓" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_explain_json_matches_run_json():
    e = json.loads(cli("explain", SENTENCE, "-j", "2", "--head", "2", "-H", "2", "--json").stdout)
    r = json.loads(cli("run", SENTENCE, "-H", "2", "--json", "--no-plot").stdout)
    column = np.array(r["heads"][1]["A_prime"])[:, 1]
    assert np.allclose(e["alpha_prime"], column, atol=1e-12)
    assert e["max_difference"] < 1e-12


def test_explain_shows_why_positions_matter():
    plain = cli("explain", "the cat saw the dog").stdout.replace("\n", " ")
    assert "a^1 = a^4" in plain and "cannot tell the two apart" in plain
    with_p = cli("explain", "the cat saw the dog", "--positions", "sinusoidal").stdout.replace("\n", " ")
    assert "a^1 ≠ a^4" in with_p


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--query", "8"], "--query 8"),
        (["--query", "0"], "--query 0"),
        (["--head", "2"], "--head 2"),
        (["--precision", "-1"], "--precision"),
    ],
)
def test_explain_bad_indices(args, fragment):
    ran = cli("explain", SENTENCE, *args)
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)


def test_head_statistics_against_direct_computation():
    A = np.array([[0.5, 0.0, 0.2], [0.5, 1.0, 0.2], [0.0, 0.0, 0.6]])
    s = one_head(A)
    h0 = -(0.5 * np.log(0.5) * 2)
    h2 = -(2 * 0.2 * np.log(0.2) + 0.6 * np.log(0.6))
    assert s["entropy_mean"] == pytest.approx((h0 + 0 + h2) / 3)
    assert s["entropy_min"] == pytest.approx(0.0)
    assert s["max_weight"] == 1.0
    assert s["self"] == pytest.approx((0.5 + 1.0 + 0.6) / 3)  # diagonal
    assert s["previous"] == pytest.approx((0.0 + 0.2) / 2)  # A[j-1, j] for j = 2, 3
    assert s["first"] == pytest.approx((0.5 + 0.0 + 0.2) / 3)  # row 1


def test_uniform_attention_has_entropy_log_n():
    assert entropy(np.full((4, 2), 0.25)) == pytest.approx([np.log(4)] * 2)


def test_stats_and_mean_heads_in_json_and_figures():
    ran = cli("run", SENTENCE, "-H", "3", "--json", "--mean-heads")
    obj = json.loads(ran.stdout)
    assert [s["head"] for s in obj["stats"]] == [1, 2, 3]
    mean = np.mean([h["A_prime"] for h in obj["heads"]], axis=0)
    assert np.allclose(obj["mean_heads"]["A_prime"], mean)
    assert "attn_out/mean_heads.png" in obj["files"]
    text = cli("run", SENTENCE, "--no-plot").stdout
    assert "head statistics" in text and "entropy" in text
