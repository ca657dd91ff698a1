"""The notes' maths, proven by properties and by small hand-worked matrices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attncli.core.attention import attend, causal_mask, multi_head, relu, softmax, sparsemax
from attncli.core.embed import random_weights

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def setup(n, r=6, q=4, v=5, H=1, seed=0):
    rng = np.random.default_rng(seed)
    I = rng.standard_normal((r, n))
    W = random_weights(r, H, q, v, seed)
    return I, W


@given(arrays(float, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=finite))
def test_columns_of_A_prime_sum_to_one_under_softmax(A):
    P = softmax(A, axis=0)
    assert np.allclose(P.sum(axis=0), 1.0)
    assert np.all(P >= 0)


@given(arrays(float, st.tuples(st.integers(1, 12), st.integers(1, 8)), elements=finite))
def test_sparsemax_columns_lie_on_the_simplex(A):
    P = sparsemax(A, axis=0)
    assert np.allclose(P.sum(axis=0), 1.0)
    assert np.all(P >= 0)


def test_sparsemax_hand_worked_examples():
    # z = (1, 0): τ = 0 → (1, 0); z = (0.5, 0.3, -1): τ = (0.8 - 1)/2 = -0.1 → (0.6, 0.4, 0)
    assert np.allclose(sparsemax(np.array([[1.0], [0.0]])), [[1.0], [0.0]])
    assert np.allclose(sparsemax(np.array([[0.5], [0.3], [-1.0]])), [[0.6], [0.4], [0.0]])
    # equal scores share equally
    assert np.allclose(sparsemax(np.zeros((4, 1))), 0.25)
    # exact zeros, not merely small numbers
    assert sparsemax(np.array([[3.0], [0.0], [-2.0]]))[1:, 0].tolist() == [0.0, 0.0]


def test_sparsemax_ignores_masked_keys():
    A = np.where(causal_mask(4), np.arange(16.0).reshape(4, 4), -np.inf)
    P = sparsemax(A)
    assert np.allclose(P.sum(axis=0), 1)
    assert np.all(P[~causal_mask(4)] == 0)


def test_relu_drops_keys_with_negative_scores_and_keeps_the_rest_unnormalised():
    """The notes' other choice: a key that scores below 0 gets no weight; other weights
    are the scores themselves, so a column need not sum to 1."""
    A = np.array([[-1.0, 2.0], [0.5, -3.0], [0.25, 1.0]])
    P = relu(A)
    assert P[0, 0] == 0 and P[1, 1] == 0  # negative scores: ignored
    assert P[1, 0] == 0.5 and P[2, 1] == 1.0  # positive scores: passed on as they are
    assert P[:, 0].sum() == 0.75 and P[:, 1].sum() == 3.0  # no renormalisation


@pytest.mark.parametrize("big", [1e30, -1e30, 1e300])
def test_softmax_is_stable_for_huge_scores(big):
    A = np.array([[big, 0.0], [0.0, -big], [1.0, big]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = softmax(A, axis=0)
    assert np.all(np.isfinite(P))
    assert np.allclose(P.sum(axis=0), 1)


def test_hand_worked_single_head():
    # I = identity (r = n = 2), W^q = W^k = W^v = identity: A = KᵀQ = I₂, no scaling
    I = np.eye(2)
    head = attend(I, np.eye(2), np.eye(2), np.eye(2), scale=False)
    e = np.e
    expected = np.array([[e / (e + 1), 1 / (e + 1)], [1 / (e + 1), e / (e + 1)]])
    assert np.allclose(head.A, np.eye(2))
    assert np.allclose(head.A_prime, expected)
    assert np.allclose(head.O, expected)  # O = V A' with V = I


def test_scaling_divides_scores_by_root_q():
    I, W = setup(5, q=9)
    a = attend(I, W["Wq"][0], W["Wk"][0], W["Wv"][0], scale=True)
    b = attend(I, W["Wq"][0], W["Wk"][0], W["Wv"][0], scale=False)
    assert np.allclose(a.A * 3.0, b.A)


@given(st.integers(1, 9), st.integers(0, 10_000))
@settings(max_examples=40)
def test_vector_perspective_equals_matrix_perspective(n, seed):
    I, W = setup(n, seed=seed)
    Wq, Wk, Wv = W["Wq"][0], W["Wk"][0], W["Wv"][0]
    head = attend(I, Wq, Wk, Wv, scale=False)
    for j in range(n):
        q_j = Wq @ I[:, j]
        alpha = np.array([q_j @ (Wk @ I[:, i]) for i in range(n)])  # α_{j,i} = q^j · k^i
        alpha_p = np.exp(alpha - alpha.max()) / np.exp(alpha - alpha.max()).sum()
        b_j = sum(alpha_p[i] * (Wv @ I[:, i]) for i in range(n))
        assert np.allclose(head.A[:, j], alpha, atol=1e-12)
        assert np.allclose(head.O[:, j], b_j, atol=1e-12)


@given(
    st.integers(1, 8),
    st.integers(0, 1000),
    st.sampled_from(["softmax", "relu", "sparsemax"]),
    st.booleans(),
    st.booleans(),
)
@settings(max_examples=40)
def test_one_head_equals_the_single_head_path(n, seed, norm, scale, causal):
    I, W = setup(n, seed=seed)
    kw = dict(norm=norm, scale=scale, causal=causal)
    single = attend(I, W["Wq"][0], W["Wk"][0], W["Wv"][0], **kw)
    multi = multi_head(I, W["Wq"], W["Wk"], W["Wv"], None, **kw)
    assert np.array_equal(multi.O, single.O)
    assert np.array_equal(multi.heads[0].A_prime, single.A_prime)


@given(st.integers(2, 9), st.integers(1, 4), st.randoms(use_true_random=False))
@settings(max_examples=40)
def test_without_positions_a_permutation_of_tokens_permutes_the_output(n, H, rnd):
    I, W = setup(n, r=8, q=3, v=2, H=H)
    perm = np.array(rnd.sample(range(n), n))
    a = multi_head(I, W["Wq"], W["Wk"], W["Wv"], W["Wo"])
    b = multi_head(I[:, perm], W["Wq"], W["Wk"], W["Wv"], W["Wo"])
    assert np.allclose(b.O, a.O[:, perm])
    for ha, hb in zip(a.heads, b.heads):
        assert np.allclose(hb.A_prime, ha.A_prime[np.ix_(perm, perm)])


def test_causal_mask_lets_query_j_see_keys_up_to_j():
    I, W = setup(5)
    head = attend(I, W["Wq"][0], W["Wk"][0], W["Wv"][0], causal=True)
    assert np.all(head.A_prime[np.tril_indices(5, -1)] == 0)  # key i > query j
    assert np.allclose(head.A_prime.sum(axis=0), 1)
    assert head.A_prime[0, 0] == 1.0  # the first query sees only itself


def test_temperature_sharpens_and_flattens():
    I, W = setup(6)
    args = (I, W["Wq"][0], W["Wk"][0], W["Wv"][0])
    cold, warm = attend(*args, temperature=0.1), attend(*args, temperature=10.0)
    assert cold.A_prime.max() > attend(*args).A_prime.max() > warm.A_prime.max()


def test_multi_head_merges_through_Wo():
    I, W = setup(4, r=6, q=2, v=3, H=2)
    m = multi_head(I, W["Wq"], W["Wk"], W["Wv"], W["Wo"])
    assert m.O_concat.shape == (6, 4)
    assert np.allclose(m.O, W["Wo"] @ np.vstack([h.O for h in m.heads]))
    assert m.O.shape == I.shape


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_softmax_on_every_core_gives_the_same_bits_as_one_core(monkeypatch, causal, temperature):
    import attncli.core.attention as attention

    rng = np.random.default_rng(3)
    A = (rng.standard_normal((5, 40, 40)) * 30).astype(np.float32)
    if causal:
        np.copyto(A, -np.inf, where=~causal_mask(40))
    serial, parallel = A.copy(), A.copy()
    attention.normalise(serial, softmax, temperature)
    monkeypatch.setattr(attention, "PARALLEL_NUMBERS", 1)
    monkeypatch.setattr(attention.os, "cpu_count", lambda: 2)
    attention.normalise(parallel, softmax, temperature)
    assert np.array_equal(serial, parallel)
    assert np.allclose(parallel.sum(axis=1), 1, atol=1e-5)
    beside = np.empty_like(A)
    attention.normalise(A, softmax, temperature, out=beside)  # A kept: A' written beside it
    assert np.array_equal(beside, serial) and not np.array_equal(A, serial)
