"""`survey`'s batched forward pass: sequences of different lengths packed into one pass
(padded, padding keys hidden) give each sequence the attention it gets alone, for an
encoder, GPT-2 and Llama-family decoders; and the batched statistics equal the
per-sequence ones."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from helpers import write_bert, write_gpt2

from attncli.core.attention import Padding, attend_heads, causal_mask
from attncli.core.models import load
from attncli.core.models.forward import Keep, forward, forward_batch, n_heads, n_layers
from attncli.core.tokenize import Tokens

HAVE_HF = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None
LENGTHS = [5, 11, 2, 8, 11]


def folder_for(family: str, tmp_path):
    folder = tmp_path / family
    if family == "bert":
        write_bert(folder, L=2, H=3)
    elif family == "gpt2":
        write_gpt2(folder, L=2, H=4)
    else:
        if not HAVE_HF:
            pytest.skip("transformers/torch not installed")
        from llama_helpers import hf_model, save

        save(hf_model(family), folder)
    return folder


def alone(ck, ids: list[int]) -> np.ndarray:
    tokens = Tokens([str(i) for i in ids], [(0, 0)] * len(ids), list(ids), [False] * len(ids))
    keep = Keep(list(range(1, n_layers(ck) + 1)), list(range(1, n_heads(ck) + 1)))
    return forward(ck, tokens, keep).A_prime


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "mistral", "gemma2"])
def test_a_batch_of_different_lengths_gives_each_sequence_its_own_attention(family, tmp_path):
    ck = load(folder_for(family, tmp_path))
    rng = np.random.default_rng(4)
    ids = [[int(i) for i in rng.integers(3, 100, m)] for m in LENGTHS]
    got: dict[int, np.ndarray] = {}
    forward_batch(ck, ids, lambda layer, A_prime: got.setdefault(layer, A_prime.copy()))
    assert sorted(got) == list(range(n_layers(ck)))
    for b, seq in enumerate(ids):
        want = alone(ck, seq)
        n = len(seq)
        for layer, batch in got.items():
            np.testing.assert_allclose(batch[b, :, :n, :n], want[layer], rtol=0, atol=1e-5)
            assert np.all(batch[b, :, n:, :n] == 0)  # no query looks at the padding


def test_padding_packs_and_unpacks_columns_in_order():
    pad = Padding((2, 3, 1))
    X = np.arange(2 * 6, dtype=float).reshape(2, 6)  # 2 rows, T = 6 packed columns
    P = pad.pad(X)
    assert P.shape == (3, 2, 3)
    np.testing.assert_array_equal(P[0], [[0, 1, 0], [6, 7, 0]])
    np.testing.assert_array_equal(P[2], [[5, 0, 0], [11, 0, 0]])
    np.testing.assert_array_equal(pad.unpad(P), X)
    np.testing.assert_array_equal(pad.positions(), [0, 1, 0, 1, 2, 0])


def test_attend_heads_on_a_padded_batch_equals_each_sequence_alone():
    rng = np.random.default_rng(0)
    pad = Padding((4, 7))
    Q, K, V = (rng.standard_normal((3, 5, 11)) for _ in range(3))  # H×q×T, packed
    for causal in (False, True):
        _, A_prime, O = pad.attend(Q, K, V, mask=causal_mask(pad.n) if causal else None)
        start = 0
        for b, n in enumerate(pad.lengths):
            cols = slice(start, start + n)
            _, want_A, want_O = attend_heads(
                Q[..., cols], K[..., cols], V[..., cols], mask=causal_mask(n) if causal else None
            )
            np.testing.assert_allclose(A_prime[b, :, :n, :n], want_A, atol=1e-12)
            np.testing.assert_allclose(O[..., cols], want_O, atol=1e-12)
            start += n


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_a_chunk_surveyed_in_batches_equals_each_window_surveyed_alone(family, tmp_path, monkeypatch):
    from attncli.core import survey_run
    from attncli.core.survey import Acc, Seq, add_induction, add_sequence
    from attncli.core.survey_run import Job, induction_length, run_job
    from attncli.core.survey_source import Spec, source

    folder = folder_for(family, tmp_path)
    rng = np.random.default_rng(2)
    words = "the cat sat on a mat . dog ran to house , and then it slept !".split()
    lines = [(f"line {k}", " ".join(rng.choice(words, rng.integers(1, 14)))) for k in range(20)]
    spec = Spec(model=str(folder), induction=5, induction_len=6)
    monkeypatch.setattr(survey_run, "SLACK", 4.0)  # big groups: several lengths in each
    batched = run_job(spec, Job(lines=lines)).merge(run_job(spec, Job(first=0, count=5)))
    assert len(survey_run.groups([len(source(spec).windows(t)[0][0]) for _, t in lines])) < len(lines)
    src = source(spec)
    single = Acc.zeros(src.layers, src.heads)
    ck = src.ck
    for _, text in lines:
        for w in src.windows(text)[0]:
            add_sequence(single, alone(ck, [int(i) for i in w.ids]), Seq(w.tokens, w.special, w.ids, src.causal))
    T = induction_length(spec)
    for index in range(5):
        tokens, start = src.induction(index, T)
        add_induction(single, alone(ck, [int(i) for i in tokens.ids]), start, T)
    np.testing.assert_array_equal(batched.count, single.count)
    np.testing.assert_allclose(batched.mean(), single.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched.std(), single.std(), rtol=1e-4, atol=1e-5)


def test_workers_run_one_blas_thread_and_keep_a_core_type_already_chosen(monkeypatch):
    from attncli.core import survey_run

    monkeypatch.setattr(survey_run, "cpu_flags", lambda: {"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"})
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    env = survey_run.worker_environment()
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["OPENBLAS_CORETYPE"] == "SKYLAKEX"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert "OPENBLAS_CORETYPE" not in survey_run.worker_environment()  # the worker inherits the user's choice
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setattr(survey_run, "cpu_flags", lambda: {"avx2", "fma"})
    assert "OPENBLAS_CORETYPE" not in survey_run.worker_environment()


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_a_chunk_of_groups_gives_each_sequence_its_own_attention(family, tmp_path):
    """One pass for several groups (the products over all their tokens, attention group
    by group) gives every sequence the attention it gets alone, and each group what it
    gets as a batch of its own."""
    from attncli.core.models.forward import forward_chunk

    ck = load(folder_for(family, tmp_path))
    rng = np.random.default_rng(5)
    groups = [[[int(i) for i in rng.integers(3, 100, m)] for m in lengths] for lengths in ([3, 4], [9], [6, 7, 5])]
    got: dict[tuple[int, int], np.ndarray] = {}
    forward_chunk(ck, groups, lambda g, layer, A_prime: got.setdefault((g, layer), A_prime.copy()))
    assert sorted(got) == [(g, layer) for g in range(3) for layer in range(n_layers(ck))]
    for g, ids in enumerate(groups):
        own: dict[int, np.ndarray] = {}
        forward_batch(ck, ids, lambda layer, A_prime, own=own: own.setdefault(layer, A_prime.copy()))
        for layer, stack in own.items():
            assert got[g, layer].shape == stack.shape
            np.testing.assert_allclose(got[g, layer], stack, rtol=0, atol=1e-5)
        for b, seq in enumerate(ids):
            want, n = alone(ck, seq), len(seq)
            for layer in own:
                np.testing.assert_allclose(got[g, layer][b, :, :n, :n], want[layer], rtol=0, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_on_fused_rows_equals_each_sequence_alone(causal):
    """Padding.attend_rows (Q, K, V side by side in packed rows, the scale applied to Q,
    padding keys hidden by slices) against attend_heads on each sequence."""
    rng = np.random.default_rng(1)
    H, d, lengths = 3, 4, (4, 7, 1)
    pad = Padding(lengths)
    X = rng.standard_normal((sum(lengths), 3 * H * d)).astype(np.float32) * 2
    A_prime, rows = pad.attend_rows(X, H, 3, scale=0.3, mask=causal_mask(pad.n) if causal else None)
    QK_only, none = pad.attend_rows(X[:, : 2 * H * d], H, 2, scale=0.3, mask=causal_mask(pad.n) if causal else None)
    assert none is None and rows is not None
    np.testing.assert_array_equal(QK_only, A_prime)
    start = 0
    for b, n in enumerate(lengths):
        part = X[start : start + n].reshape(n, 3, H, d).transpose(1, 2, 3, 0)  # 3×H×d×n, notes' layout
        _, want_A, want_O = attend_heads(*part, scale=0.3, mask=causal_mask(n) if causal else None)
        np.testing.assert_allclose(A_prime[b, :, :n, :n], want_A, rtol=0, atol=1e-6)
        assert np.all(A_prime[b, :, n:, :] == 0)  # padding keys: weight 0 for every query
        np.testing.assert_allclose(rows[start : start + n], want_O.transpose(2, 0, 1).reshape(n, H * d), atol=1e-5)
        start += n


def test_one_worker_runs_in_this_process_only_with_a_workers_kernels(monkeypatch):
    """--workers 1 runs the jobs in the command's own process when its OpenBLAS runs the
    kernels a worker process would get (the same bits), and starts a worker otherwise."""
    from attncli.core import blas, survey_run

    threadpoolctl = pytest.importorskip("threadpoolctl")
    if blas._openblas() is not None:  # numpy's OpenBLAS: blas.core names its kernels as threadpoolctl does
        arch = [i.get("architecture") for i in threadpoolctl.threadpool_info() if i.get("internal_api") == "openblas"]
        assert blas.core() in arch
    monkeypatch.setattr(survey_run, "worker_environment", lambda: {"OPENBLAS_CORETYPE": "SKYLAKEX"})
    monkeypatch.setattr(blas, "core", lambda: "SkylakeX")
    assert survey_run.same_kernels()
    monkeypatch.setattr(blas, "core", lambda: "Haswell")
    assert not survey_run.same_kernels()
    monkeypatch.setattr(survey_run, "worker_environment", lambda: {"OMP_NUM_THREADS": "1"})
    assert survey_run.same_kernels()  # the worker inherits this process's setting or chooses as it did

    started = []

    def no_pool(workers):
        started.append(workers)
        raise OSError("a worker process was started")

    monkeypatch.setattr(survey_run, "_pool", no_pool)
    monkeypatch.setattr(survey_run, "run_job", lambda spec, job: job.count)
    jobs = [survey_run.Job(first=k, count=k + 1) for k in range(3)]
    assert [acc for _, acc in survey_run._in_order(None, jobs, 1)] == [1, 2, 3] and started == []
    monkeypatch.setattr(survey_run, "worker_environment", lambda: {"OPENBLAS_CORETYPE": "SKYLAKEX"})
    with pytest.raises(OSError, match="worker process was started"):
        list(survey_run._in_order(None, jobs, 1))
    assert started == [1]
