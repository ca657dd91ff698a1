"""Figures for slides: titles inside the figure, one meaning of --title, fonts for every
script, grids that honour --annotate / --per-head-scale, a fixed 0–1 scale for A', the
figures `model` writes by default, and the manifest of each run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from PIL import Image

from attncli.figures import fonts
from attncli.figures.common import Scale, scales
from attncli.figures.grid import Grid, grid_figure
from attncli.figures.heatmap import HeatmapFigure
from attncli.figures.style import Style

LONG = "Lecture 5: self-attention on a toy sentence, with a title that goes on and on and on"
TOKENS = ["The", "cat", "sat", "on", "the₂", "mat", "."]


def inside(artist, fig) -> bool:
    fig.canvas.draw()
    box = artist.get_window_extent(fig.canvas.get_renderer())
    frame = fig.bbox
    return (
        box.x0 >= frame.x0 - 0.5 and box.x1 <= frame.x1 + 0.5 and box.y0 >= frame.y0 - 0.5 and box.y1 <= frame.y1 + 0.5
    )


@pytest.mark.parametrize("figsize, font_size", [(None, None), ((4, 3), 14), ((3, 3), None), (None, 20)])
def test_heatmap_title_lies_inside_the_figure(figsize, font_size):
    style = Style(figsize=figsize, font_size=font_size)
    title = "layer 1, head 3: A′, special tokens hidden, columns renormalised"
    for text in (title, LONG, "x" * 90):
        fig = HeatmapFigure(
            TOKENS, TOKENS, style, "query", "key", cbar_label="A′", scale=Scale(0, 1, False), titles=[text]
        )
        fig.set(np.full((7, 7), 1 / 7), text)
        assert inside(fig.title, fig.fig), (text, figsize)
        assert fig.title.get_text().replace("\n", " ").replace("  ", " ").startswith(text[:10])


@pytest.mark.parametrize("figsize", [None, (4, 3)])
def test_grid_title_lies_inside_the_figure(tmp_path, figsize):
    mats = [np.full((7, 7), 1 / 7)] * 4
    grid = Grid("heads", [f"head {h}" for h in range(1, 5)], LONG)
    fig = grid_figure(
        mats,
        grid,
        TOKENS,
        TOKENS,
        Style(figsize=figsize, font_size=14),
        bounded=True,
        cbar_label="A′",
        path=tmp_path / "g.png",
    )
    title = max(fig.axes[0].texts, key=lambda t: t.get_fontsize() * ("Lecture" in t.get_text()))
    assert "Lecture" in title.get_text()
    assert inside(title, fig)


def test_title_replaces_the_default_in_every_figure(monkeypatch):
    seen = []
    from attncli.figures import heatmap

    real = heatmap.HeatmapFigure.set_title
    monkeypatch.setattr(heatmap.HeatmapFigure, "set_title", lambda self, t: (seen.append(t), real(self, t))[1])
    assert cli("run", "The cat sat .", "-H", "2", "--title", "My slide", "--mean-heads").code == 0
    assert seen and set(seen) == {"My slide"}


def test_cjk_sentence_draws_with_an_installed_font_and_no_glyph_warning():
    choice = fonts.choose(["我爱自然语言处理"])
    if choice.missing:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    assert len(choice.families) > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ran = cli("run", "我爱自然语言处理", "-t", "char", "-H", "2")
    assert ran.code == 0
    assert "Glyph" not in ran.stderr and "warning" not in ran.stderr, ran.stderr


def test_without_a_font_one_line_names_the_characters_and_the_package(monkeypatch):
    monkeypatch.setattr(fonts, "_candidates", lambda rescan=False: [])  # only DejaVu Sans installed
    ran = cli("run", "我爱自然语言处理", "-t", "char", "-H", "2")
    assert ran.code == 0
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "我" in lines[0] and "fonts-noto-cjk" in lines[0] and "Glyph" not in lines[0]


def test_font_option_is_tried_first_and_an_unknown_font_is_one_error_line():
    assert fonts.choose(["abc"], "DejaVu Serif").families[:2] == ("DejaVu Serif", "DejaVu Sans")
    ran = cli("run", "The cat .", "--font", "No Such Font 123")
    assert ran.code == 2 and "--font" in ran.stderr and "Traceback" not in ran.stderr


def test_one_long_token_suggests_char_and_graphemes_stay_whole():
    ran = cli("run", "我爱自然语言处理", "--no-plot")
    assert "-t char" in ran.stderr
    from attncli.core.tokenize import tokenize

    for spec in ("whitespace", "bert", "char"):
        toks = tokenize("I ❤️ 🍕 . 👨‍👩‍👧", spec).tokens
        assert "❤️" in toks and "👨‍👩‍👧" in toks, (spec, toks)
        assert "\ufe0f" not in toks and "\u200d" not in toks
    assert tokenize("é", "char").tokens == ["é"]  # e + combining acute: one token


def test_a_prime_is_on_a_fixed_zero_one_scale_unless_vmax_auto():
    mats = [np.full((3, 3), 0.2), np.full((3, 3), 0.4)]
    assert {(s.vmin, s.vmax) for s in scales(mats, Style(), bounded=True)} == {(0.0, 1.0)}
    assert scales(mats, Style(vmax_auto=True), bounded=True)[0].vmax == pytest.approx(0.4)
    assert scales(mats, Style(), bounded=False)[1].vmax == pytest.approx(0.4)
    assert cli("run", "The cat sat .", "--vmax", "auto").code == 0
    assert cli("run", "The cat sat .", "--vmax", "lots").code == 2


def _grid_png(*extra: str) -> np.ndarray:
    assert cli("run", "The cat sat on the mat .", "-H", "4", *extra).code == 0
    return np.asarray(Image.open("attn_out/heads.png").convert("RGB")).astype(int)


def test_grid_honours_annotate_and_per_head_scale():
    plain = _grid_png("--no-annotate")
    annotated = _grid_png("--annotate")
    assert plain.shape == annotated.shape and (plain != annotated).any()
    per_head = _grid_png("--no-annotate", "--per-head-scale")
    assert per_head.shape != plain.shape or (per_head != plain).any()


def test_annotate_at_200_tokens_draws_no_dashes_and_says_so():
    text = " ".join(f"w{k}" for k in range(200))
    ran = cli("run", text, "--annotate", "--no-grid")
    assert ran.code == 0
    assert "--annotate" in ran.stderr and "too small" in ran.stderr


def _write_model(folder: Path) -> None:
    from helpers import write_bert

    write_bert(folder, H=3, L=2)


def test_model_writes_the_overview_and_only_selected_heads(tmp_path):
    folder = tmp_path / "m"
    _write_model(folder)
    ran = cli("model", folder, "the cat sat", "-q")
    assert ran.code == 0, ran.stderr
    assert sorted(p.name for p in Path("attn_out").glob("*.png")) == ["model.png"]
    ran = cli("model", folder, "the cat sat", "-q", "--layer", "2", "--head", "1,3", "-o", "sel")
    assert sorted(p.name for p in Path("sel").glob("*.png")) == [
        "layer_2_head_1.png",
        "layer_2_head_3.png",
        "model.png",
    ]
    ran = cli("model", folder, "the cat sat", "-q", "--all-figures", "-o", "all")
    assert len(list(Path("all").glob("layer_*_head_*.png"))) == 6


def test_manifest_lists_this_run_and_clean_removes_only_listed_files():
    Path("attn_out").mkdir()
    Path("attn_out/mine.txt").write_text("not attncli's")
    assert cli("run", "The cat sat .", "-H", "4", "-q").code == 0
    listed = json.loads(Path("attn_out/attncli-manifest.json").read_text())["files"]
    assert listed == ["head_1.png", "head_2.png", "head_3.png", "head_4.png", "heads.png"]
    assert cli("run", "The cat sat .", "-H", "2", "-q", "--clean").code == 0
    left = sorted(p.name for p in Path("attn_out").iterdir())
    assert left == ["attncli-manifest.json", "head_1.png", "head_2.png", "heads.png", "mine.txt"]
    assert json.loads(Path("attn_out/attncli-manifest.json").read_text())["files"] == [
        "head_1.png",
        "head_2.png",
        "heads.png",
    ]


def test_clean_ignores_a_manifest_that_names_paths_outside(tmp_path):
    Path("attn_out").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    manifest = {"attncli": "0", "files": [str(victim), "../victim.txt"]}
    Path("attn_out/attncli-manifest.json").write_text(json.dumps(manifest))
    assert cli("run", "The cat .", "-q", "--clean").code == 0
    assert victim.exists()
