"""The line view as a figure: what the lines mean, file names, formats, bytes, hostile tokens."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from results import model_result, run_result, stochastic

from attncli.errors import AttnError
from attncli.figures.lines import Plan, line_figures, lines_figure, segments
from attncli.figures.style import Style

WORDS = ["[CLS]", "The", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
SPECIAL = [True] + [False] * 7 + [True]


def _lines_by_pair(fig) -> dict[tuple[int, int], float]:
    """(query, key) token numbers (1-based) → drawn opacity, read back from the artists:
    each segment's ends are matched to the label texts at the same height."""
    from matplotlib.collections import LineCollection

    ax = fig.axes[0]
    ys = {"query": {}, "key": {}}
    for t in ax.texts:
        gid = t.get_gid() or ""
        side, _, k = gid.partition("-")
        if side in ys:
            ys[side][round(t.get_position()[1], 6)] = int(k)
    out = {}
    for coll in (c for c in ax.collections if isinstance(c, LineCollection)):
        for seg, rgba in zip(coll.get_segments(), coll.get_colors()):
            (_, yq), (_, yk) = seg
            out[(ys["query"][round(yq, 6)], ys["key"][round(yk, 6)])] = float(rgba[3])
    return out


@pytest.mark.parametrize("query", [1, 3, 9])
def test_the_line_to_the_largest_weight_is_the_most_opaque(query):
    result = run_result(WORDS, heads=1, seed=3)
    weights = result.A_prime[0, 0][:, query - 1]  # column j: the keys' weights for query j
    plan = Plan(list(range(9)), WORDS, query - 1, [1], [result.A_prime[0, 0]], 0.0, 1.0, "t")
    drawn = _lines_by_pair(lines_figure(plan, Style(), overlay=False, width=False))
    mine = {key: a for (q, key), a in drawn.items() if q == query}
    assert max(mine, key=mine.get) == int(np.argmax(weights)) + 1
    for key, a in mine.items():  # and every line of the highlighted query is its weight
        assert a == pytest.approx(weights[key - 1])
    others = [a for (q, _), a in drawn.items() if q != query]
    assert max(others) <= 0.12 + 1e-9  # the rest fade


def test_lines_under_the_threshold_are_left_out_and_the_figure_says_how_many():
    rng = np.random.default_rng(0)
    M = stochastic(rng, 1, 1, 40)[0, 0]
    plan = Plan(list(range(40)), [f"t{k}" for k in range(40)], None, [1], [M], 0.05, 1.0, "t")
    drawn = _lines_by_pair(lines_figure(plan, Style(), overlay=False, width=False))
    assert len(drawn) == int((M >= 0.05).sum())
    assert min(drawn.values()) >= 0.05
    fig = lines_figure(plan, Style(), overlay=False, width=False)
    note = [t.get_text() for t in fig.axes[0].texts if "not drawn" in t.get_text()]
    assert note == [f"line opacity = A′[i, j], key i for query j; {1600 - len(drawn):,} lines under 0.05 not drawn"]


def test_segments_are_weakest_first_so_strong_lines_lie_on_top():
    rng = np.random.default_rng(1)
    M = stochastic(rng, 1, 1, 6)[0, 0]
    plan = Plan(list(range(6)), list("abcdef"), None, [1], [M], 0.0, 1.0, "t")
    _, _, w = segments(plan, 0)
    assert np.all(np.diff(w) >= 0) and len(w) == 36


def test_file_names_per_head_overlaid_per_layer_and_in_a_batch(tmp_path):
    run = run_result(WORDS, heads=2)
    assert [p.name for p in line_figures(run, tmp_path, Style())] == ["lines_head_1.png", "lines_head_2.png"]
    assert [p.name for p in line_figures(run, tmp_path, Style(), overlay=True, sentence=2)] == ["s2_lines.png"]
    model = model_result(WORDS, layers=2, heads=2)
    names = [p.name for p in line_figures(model, tmp_path, Style(image_format="svg"))]
    assert names == [f"lines_layer_{l}_head_{h}.svg" for l in (1, 2) for h in (1, 2)]
    assert [p.name for p in line_figures(model, tmp_path, Style(), overlay=True)] == [
        "lines_layer_1.png",
        "lines_layer_2.png",
    ]


def test_same_input_same_bytes_in_every_format(tmp_path):
    result = run_result(WORDS, heads=2)
    for fmt in ("png", "svg", "pdf"):
        a = line_figures(result, tmp_path / "a", _mk(tmp_path / "a", fmt), overlay=True)[0].read_bytes()
        b = line_figures(result, tmp_path / "b", _mk(tmp_path / "b", fmt), overlay=True)[0].read_bytes()
        assert a == b
    svg = (tmp_path / "a" / "lines.svg").read_bytes()
    assert ET.fromstring(svg).tag.endswith("svg")
    assert (tmp_path / "a" / "lines.pdf").read_bytes().startswith(b"%PDF")


def _mk(folder: Path, fmt: str) -> Style:
    folder.mkdir(exist_ok=True)
    return Style(image_format=fmt)


def test_dark_theme_dpi_and_figsize(tmp_path):
    result = run_result(WORDS, heads=1)
    path = line_figures(result, tmp_path, Style(theme="dark", dpi=100, figsize=(6.0, 5.0)))[0]
    image = Image.open(path)
    assert image.size == (600, 500)
    assert np.array(image.convert("RGB"))[2, 2].sum() < 3 * 60


def test_hidden_special_tokens_have_no_labels_and_no_lines():
    result = run_result(WORDS, heads=1, special=SPECIAL)
    from attncli.figures.lines import kept_tokens

    keep = kept_tokens(result, True)
    assert keep == list(range(1, 8))
    plan = Plan(keep, WORDS[1:8], None, [1], [result.A_prime[0, 0]], 0.0, 1.0, "t")
    fig = lines_figure(plan, Style(), overlay=False, width=False, hidden=2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "[CLS]" not in texts and "[SEP]" not in texts
    assert any("2 special tokens hidden" in t for t in texts)
    assert all(q not in (1, 9) and k not in (1, 9) for q, k in _lines_by_pair(fig))


def test_token_text_is_never_mathtext(tmp_path):
    words = ["$x$", r"$\frac{a}{b}$", "a_b^c", "$"]
    result = run_result(words, heads=1)
    for fmt in ("png", "svg"):
        path = line_figures(result, tmp_path, Style(image_format=fmt))[0]
        assert path.stat().st_size > 0
    plan = Plan(list(range(4)), words, None, [1], [result.A_prime[0, 0]], 0.0, 1.0, "t")
    fig = lines_figure(plan, Style(), overlay=False, width=False)
    assert all(not t.get_parse_math() for t in fig.axes[0].texts)


def test_128_tokens_stay_legible(tmp_path):
    words = [f"w{k}" for k in range(128)]
    result = model_result(words, layers=1, heads=2)
    path = line_figures(result, tmp_path, Style(), overlay=True)[0]
    w, h = Image.open(path).size
    assert h < 2400 and w < 1200  # a figure, not a poster


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"query": 0}, "--query 0: the input has 9 tokens"),
        ({"query": 10}, "--query 10"),
        ({"query": 1, "hide_special": True}, "special token"),
        ({"threshold": 1.5}, "--threshold"),
    ],
)
def test_bad_options_are_one_clear_error(tmp_path, kwargs, message):
    result = run_result(WORDS, heads=1, special=SPECIAL)
    with pytest.raises(AttnError, match=message.replace("[", r"\[")):
        line_figures(result, tmp_path, Style(), **kwargs)
    assert not list(tmp_path.iterdir())


def test_the_cli_draws_lines_and_writes_the_page_for_run_model_and_a_batch(tmp_path):
    """--view lines and --html work for every command from the one result, with no
    per-command code: run, model, and a batch (one page with a sentence picker)."""
    from conftest import cli, one_error_line
    from helpers import write_bert

    ran = cli("run", "The cat sat on the mat .", "-H", "2", "--view", "lines", "--html", "run.html", "-q")
    assert ran.code == 0, ran.stderr
    assert ran.stdout.split() == ["attn_out/lines_head_1.png", "attn_out/lines_head_2.png", "run.html"]
    write_bert(tmp_path / "m")
    ran = cli("model", str(tmp_path / "m"), "the cat sat", "--layer", "2", "--view", "lines", "--html", "m.html", "-q")
    assert ran.code == 0, ran.stderr
    assert "attn_out/lines_layer_2_head_1.png" in ran.stdout.split() and "m.html" in ran.stdout.split()
    ran = cli("run", "--no-plot", "--html", "batch.html", "-q", input="the cat sat\na dog sat\n")
    assert ran.code == 0 and ran.stdout.split() == ["batch.html"]
    assert Path("batch.html").read_text(encoding="utf-8").count("a dog sat") >= 1
    bad = cli("run", "the cat", "--view", "dots")
    assert bad.code == 2 and "--view" in one_error_line(bad.stderr)
