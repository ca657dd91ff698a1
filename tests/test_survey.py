"""`attncli survey`: every metric against a direct computation on hand-made attention
stacks, the induction score on a built induction pattern, the same bits for any number of
workers and on a real Dask cluster, and the command end to end on a tiny random BERT.

The slow ones: the worker pools (spawned processes, ~1 s each) and the LocalCluster (~3 s)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from conftest import cli, one_error_line
from helpers import write_bert

from attncli.core.survey import INDEX, Acc, Seq, Summary, Tree, add_induction, add_sequence, is_punctuation
from attncli.core.survey_run import Interrupted, chunks, read_lines, survey_local
from attncli.core.survey_source import Spec, cut
from attncli.core.tokenize import Tokens


def columns(rng, L: int, H: int, n: int, causal: bool = False) -> np.ndarray:
    """A random A' stack (L×H×n×n): each column j a distribution over keys (i ≤ j if causal)."""
    A = rng.standard_normal((L, H, n, n)) * 2
    if causal:
        A = np.where(np.tril(np.ones((n, n))).T == 1, A, -np.inf)
    E = np.exp(A - A.max(axis=2, keepdims=True))
    return E / E.sum(axis=2, keepdims=True)


TOKENS = ["[CLS]", "the", "cat", ",", "the", "cat", "sat", "!", "[SEP]"]
SPECIAL = [True, False, False, False, False, False, False, False, True]
IDS = [1, 10, 11, 5, 10, 11, 12, 6, 2]


def reference(P: np.ndarray, causal: bool) -> dict[str, list[np.ndarray]]:
    """Each metric as a plain loop over queries j and keys i (0-based), from the definitions
    (columns read as distributions: divided by their sums)."""
    P = P / P.sum(axis=-2, keepdims=True)
    n = P.shape[-1]
    out: dict[str, list] = {m: [] for m in INDEX}
    for j in range(n):
        p = P[..., :, j]
        K = j + 1 if causal else n
        H = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)
        out["entropy"].append(H)
        if K >= 2:
            out["entropy_norm"].append(H / math.log(K))
        out["distance"].append(sum(p[..., i] * abs(i - j) for i in range(n)))
        out["max"].append(p.max(axis=-1))
        out["self"].append(p[..., j])
        if j >= 1:
            out["previous"].append(p[..., j - 1])
            out["first"].append(p[..., 0])
        if j <= n - 2:
            out["next"].append(p[..., j + 1])
        seps = [i for i in range(1, n) if SPECIAL[i] and (not causal or i <= j)]
        if seps:
            out["separator"].append(sum(p[..., i] for i in seps))
        out["punctuation"].append(sum(p[..., i] for i in range(n) if TOKENS[i] in {",", "!"}))
        copies = [i for i in range(j) if IDS[i] == IDS[j] and not SPECIAL[i] and not SPECIAL[j]]
        if copies:
            out["duplicate"].append(sum(p[..., i] for i in copies))
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_metric_equals_its_definition_computed_by_hand(causal, dtype):
    """A float64 A' is surveyed in float64 (to 1e-9 of the float64 loop); a float32 one (a
    checkpoint's pass) gets per-query values in float32, summed in float64: float32's ~1e-7
    relative precision per query, so the means and spreads to 1e-6."""
    rng = np.random.default_rng(3)
    stacks = [columns(rng, 2, 3, len(TOKENS), causal).astype(dtype) for _ in range(2)]
    acc = Acc.zeros(2, 3)
    for P in stacks:
        add_sequence(acc, P, Seq(TOKENS, SPECIAL, IDS, causal))
    s = Summary.of(acc)
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (1e-6, 1e-7)
    for metric in INDEX:
        if metric == "induction":
            continue
        values = [v for P in stacks for v in reference(P.astype(np.float64), causal)[metric]]
        assert s.count[INDEX[metric]] == len(values), metric
        stack = np.stack(values, axis=-1)
        np.testing.assert_allclose(s.mean[..., INDEX[metric]], stack.mean(axis=-1), rtol=rtol, atol=atol)
        np.testing.assert_allclose(s.std[..., INDEX[metric]], stack.std(axis=-1), rtol=max(rtol, 1e-6), atol=1e-9)


def test_causal_model_never_looks_at_the_next_token():
    rng = np.random.default_rng(0)
    acc = Acc.zeros(1, 2)
    add_sequence(acc, columns(rng, 1, 2, 9, causal=True), Seq(TOKENS, SPECIAL, IDS, True))
    assert np.all(Summary.of(acc).value("next") == 0)


def test_a_previous_token_head_and_a_sink_head_get_their_labels():
    n = len(TOKENS)
    P = np.zeros((1, 3, n, n))
    for j in range(n):
        P[0, 0, max(j - 1, 0), j] = 1.0  # previous token (the first query: itself)
        P[0, 1, 0, j] = 1.0  # everything to [CLS]
        P[0, 2, :, j] = 1.0 / n  # uniform
    acc = Acc.zeros(1, 3)
    add_sequence(acc, P, Seq(TOKENS, SPECIAL, IDS))
    s = Summary.of(acc)
    assert s.labels(0, 0) == ["previous-token"]
    assert s.labels(0, 1) == ["sink"]
    assert s.labels(0, 2) == ["broad"]
    assert s.ranked()[-1] == (0, 2)


def induction_pattern(n_prefix: int, T: int, strength: float) -> np.ndarray:
    """One head: each query of the second copy puts ``strength`` on the token after the
    earlier copy of itself, the rest spread uniformly."""
    n = n_prefix + 2 * T
    P = np.full((n, n), (1 - strength) / (n - 1))
    for j in range(n):
        target = j - T + 1 if j >= n_prefix + T else j
        P[:, j] = (1 - strength) / (n - 1)
        P[target, j] = strength
    return P[None, None]


def test_induction_score_is_high_for_an_induction_head_and_low_for_uniform_attention():
    T, start = 6, 1
    n = start + 2 * T
    acc = Acc.zeros(1, 2)
    stack = np.concatenate([induction_pattern(start, T, 0.9), np.full((1, 1, n, n), 1 / n)], axis=1)
    add_induction(acc, stack, start, T)
    s = Summary.of(acc)
    assert s.count[INDEX["induction"]] == T
    assert s.value("induction")[0, 0] == pytest.approx(0.9)
    assert s.value("induction")[0, 1] == pytest.approx(1 / n)
    assert "induction" in s.labels(0, 0) and "induction" not in s.labels(0, 1)


def test_punctuation_ignores_subword_marks():
    assert is_punctuation(",") and is_punctuation("Ġ.") and is_punctuation("##!")
    assert not is_punctuation("cat") and not is_punctuation("Ġ") and not is_punctuation("a.")


def test_long_lines_are_cut_into_framed_windows_not_truncated():
    words = [f"w{k}" for k in range(10)]
    toks = Tokens(["[CLS]", *words, "[SEP]"], [(0, 0)] * 12, list(range(12)), [True] + [False] * 10 + [True])
    windows = cut(toks, 5)
    assert [w.tokens for w in windows][0] == ["[CLS]", "w0", "w1", "w2", "[SEP]"]
    assert [t for w in windows for t in w.tokens if not t.startswith("[")] == words
    assert all(len(w) <= 5 and w.special[0] and w.special[-1] for w in windows)


def test_the_merge_tree_gives_the_same_bits_however_the_chunks_are_grouped():
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(11):
        a = Acc.zeros(1, 1)
        a.total += rng.standard_normal((1, 1, len(INDEX))) * 1e6
        a.squares += rng.random((1, 1, len(INDEX)))
        parts.append(a)
    one = Tree()
    for a in parts:
        one.push(a)
    grouped = Tree()  # groups of 4 merged elsewhere, pushed as level-2 nodes; the last 3 as the tail
    for k in (0, 4):
        sub = Tree()
        for a in parts[k : k + 4]:
            sub.push(a)
        grouped.push(sub.total(), level=2)
    tail = Tree()
    for a in parts[8:]:
        tail.push(a)
    np.testing.assert_array_equal(one.total().total, grouped.total(tail.total()).total)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survey") / "bert"
    write_bert(folder, L=2, H=3)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat . dog ran to house , and then it slept !".split()
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    lines = [" ".join(rng.choice(words, rng.integers(3, 15))) for _ in range(100)]
    lines[40] = " ".join(rng.choice(words, 120))  # longer than the model's 64 positions
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def local(bert, corpus, workers: int) -> Acc:
    spec = Spec(model=str(bert), induction=12, induction_len=8)
    return survey_local(spec, chunks(read_lines([str(corpus)])), workers)


def test_results_are_the_same_bits_for_1_2_and_3_workers(bert, corpus):
    runs = [local(bert, corpus, w) for w in (1, 2, 3)]
    for acc in runs[1:]:
        np.testing.assert_array_equal(acc.total, runs[0].total)
        np.testing.assert_array_equal(acc.squares, runs[0].squares)
        np.testing.assert_array_equal(acc.count, runs[0].count)
        assert acc.tallies == runs[0].tallies
    assert runs[0].tallies["sentences"] == 100 and runs[0].tallies["long_lines"] == 1
    assert runs[0].tallies["induction_sequences"] == 12


def test_a_dask_cluster_gives_the_local_result(bert, corpus):
    distributed = pytest.importorskip("distributed")
    from attncli.core.survey_dask import check_workers, survey_dask

    spec = Spec(model=str(bert), induction=12, induction_len=8)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        info = check_workers(client, spec)
        acc = survey_dask(client, spec, chunks(read_lines([str(corpus)])), level=1)
        with pytest.raises(Exception, match="cannot read the checkpoint"):
            check_workers(client, Spec(model=str(bert.parent / "elsewhere")))
    assert (info.layers, info.heads) == (2, 3)
    expected = local(bert, corpus, 0)
    np.testing.assert_array_equal(acc.total, expected.total)
    np.testing.assert_array_equal(acc.squares, expected.squares)
    assert acc.tallies == expected.tallies


def test_ctrl_c_keeps_what_was_merged(bert, corpus):
    seen = []

    def progress(job, acc):
        seen.append(job)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        survey_local(Spec(model=str(bert), induction=0), chunks(read_lines([str(corpus)])), 0, progress)
    assert caught.value.partial.tallies["sentences"] == 96  # three chunks of 32 lines


def test_survey_end_to_end_from_the_cli(bert, corpus, tmp_path):
    ran = cli(
        "survey",
        bert,
        corpus,
        "--workers",
        "1",
        "--json",
        "--csv",
        tmp_path / "heads.csv",
        "-o",
        tmp_path / "f",
        "--dpi",
        "40",
        "--induction",
        "8",
        "--induction-length",
        "8",
    )
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["sentences"] == 100 and obj["layers"] == 2 and obj["heads"] == 3 and not obj["partial"]
    assert len(obj["results"]) == 6 and obj["results"][0]["layer"] == 1 and obj["results"][0]["head"] == 1
    assert obj["results"][0]["metrics"]["entropy"]["count"] > 100
    assert "cut into" in ran.stderr and ran.stderr.count("warning:") == 1
    names = {p.split("/")[-1] for p in obj["files"]}
    assert {"survey_induction.png", "survey_labels.png", "heads.csv"} <= names
    rows = (tmp_path / "heads.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("layer,head,labels,entropy_mean")
    table = cli("survey", bert, corpus, "--workers", "1", "--no-plot", "--induction", "0")
    assert table.code == 0 and "layer" in table.stdout and "labels" in table.stdout


def test_random_weights_survey_as_a_baseline(corpus):
    ran = cli("survey", "random", corpus, "-w", "1", "-H", "4", "--json", "--no-plot", "--causal")
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["model_type"] == "random" and obj["heads"] == 4 and obj["causal"]
    assert all(r["metrics"]["next"]["mean"] == 0 for r in obj["results"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file"),
        ("latin1", "line 2: not valid utf-8"),
        ("empty", "the corpus is empty"),
        ("workers", "--workers must be at least 1"),
        ("folder", "not a folder"),
    ],
)
def test_bad_input_is_one_error_line(bert, tmp_path, case, message):
    path = tmp_path / "c.txt"
    args = [bert, path]
    if case == "latin1":
        path.write_bytes(b"good line\ncaf\xe9\n")
    elif case == "empty":
        path.write_text("\n   \n")
    elif case == "workers":
        path.write_text("a line\n")
        args += ["--workers", "0"]
    elif case == "folder":
        path.write_text("a line\n")
        args[0] = tmp_path / "nope"
    ran = cli("survey", *args, "-w", "1", "--no-plot") if case != "workers" else cli("survey", *args, "--no-plot")
    assert ran.code == 2
    assert message in one_error_line(ran.stderr)


def test_an_unreachable_scheduler_is_one_error_line(bert, corpus, monkeypatch):
    pytest.importorskip("distributed")
    import attncli.core.survey_dask as sd

    monkeypatch.setattr(sd, "CONNECT_TIMEOUT", 1.0)
    ran = cli("survey", bert, corpus, "--dask", "tcp://127.0.0.1:9", "--no-plot")
    assert ran.code == 2
    assert "cannot reach the scheduler" in one_error_line(ran.stderr)


def test_without_dask_installed_the_error_says_how_to_install(bert, corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    ran = cli("survey", bert, corpus, "--dask", "tcp://127.0.0.1:8786", "--no-plot")
    assert ran.code == 2
    assert 'pip install "attncli[dask]"' in one_error_line(ran.stderr)


def test_a_narrow_survey_figure_keeps_its_whole_title(tmp_path, monkeypatch):
    """One layer of one head: the longest metric's description is wrapped or made smaller,
    never cut off at the figure's edges."""
    from attncli.figures import survey as figs

    n = len(TOKENS)
    acc = Acc.zeros(1, 1)
    add_sequence(acc, np.full((1, 1, n, n), 1.0 / n), Seq(TOKENS, SPECIAL, IDS))
    drawn = []
    monkeypatch.setattr(figs, "_save", lambda fig, path, dpi: drawn.append(fig) or path)
    for metric in ("entropy_norm", "duplicate", "previous"):
        figs.heatmap(Summary.of(acc), metric, tmp_path / f"{metric}.png")
    for fig in drawn:
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        box, title = fig.bbox, fig._suptitle.get_window_extent(renderer)
        assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1, fig._suptitle.get_text()


def test_label_codes_stay_readable_on_every_grey_of_the_grid():
    """WCAG contrast of a label's colour against its cell's grey, for every score the grid shows."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    from attncli.figures.survey import GREY_TOP, label_colour

    def luminance(rgb):
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in rgb]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    for strength in np.linspace(0, 3, 301):
        cell = colormaps["Greys"](min(strength, 2.0) / GREY_TOP)[:3]
        a, b = sorted([luminance(cell), luminance(to_rgb(label_colour(strength)))])
        assert (b + 0.05) / (a + 0.05) >= 3.0, strength
