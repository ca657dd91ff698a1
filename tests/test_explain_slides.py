"""`explain -o DIR` draws the notes' steps; `explain --model DIR` walks a checkpoint's own
vectors at one layer, checked against its attention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from helpers import write_bert
from PIL import Image

SENTENCE = "The cat sat on the mat ."
STEMS = ["explain_step1_vectors", "explain_step2_weights", "explain_step3_sum", "explain_matrices"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_explain_writes_the_step_figures(theme):
    ran = cli("explain", SENTENCE, "-j", "3", "-o", "slides", "--theme", theme)
    assert ran.code == 0, ran.stderr
    for stem in STEMS:
        assert f"wrote slides/{stem}.png" in ran.stdout
        im = Image.open(f"slides/{stem}.png")
        assert im.size[0] > 600 and im.size[1] > 300
    manifest = json.loads(Path("slides/attncli-manifest.json").read_text())
    assert manifest["files"] == [f"{s}.png" for s in STEMS]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_explain_figures_are_byte_reproducible(fmt):
    for out in ("a", "b"):
        assert cli("explain", SENTENCE, "-j", "2", "-o", out, "--image-format", fmt).code == 0
    for stem in STEMS:
        assert Path(f"a/{stem}.{fmt}").read_bytes() == Path(f"b/{stem}.{fmt}").read_bytes()


def test_query_column_is_outlined_in_the_matrix_figure():
    from attncli.core import pipeline
    from attncli.core.explain import explain
    from attncli.core.settings import Settings
    from attncli.figures.explain import matrix_blocks

    e = explain(pipeline.run(SENTENCE, Settings()), 4, 1)
    blocks = matrix_blocks(e)
    assert [b.title.split(" ")[0] for b in blocks] == ["I", "Q", "K", "V", "A", "A'", "O"]
    assert all(b.highlight == 3 for b in blocks)
    assert [b.caption for b in blocks][:2] == ["r×n = 8×7", "q×n = 8×7"]


def test_explain_model_walks_the_checkpoints_vectors(tmp_path):
    folder = tmp_path / "m"
    write_bert(folder, H=3, L=2)
    ran = cli("explain", "the cat sat", "--model", folder, "--layer", "2", "--head", "3", "-j", "2", "--json")
    assert ran.code == 0, ran.stderr
    e = json.loads(ran.stdout)
    assert e["head"] == 3 and e["max_difference"] < 1e-4
    m = json.loads(cli("model", folder, "the cat sat", "--json", "--no-plot", "--layer", "2", "--head", "3").stdout)
    column = np.array(m["layers"][0]["heads"][0]["A_prime"])[:, 1]
    assert np.allclose(e["alpha_prime"], column, atol=1e-5)
    text = cli("explain", "the cat sat", "--model", folder, "--layer", "2", "--head", "3", "-j", "2").stdout
    assert "W^q a^2 + b^q" in text and "layer 2 of" in text and "✓" in text


def test_explain_model_refuses_a_layer_it_does_not_have(tmp_path):
    folder = tmp_path / "m"
    write_bert(folder, H=3, L=2)
    ran = cli("explain", "the cat", "--model", folder, "--layer", "3")
    assert ran.code == 2 and "--layer 3" in one_error_line(ran.stderr)
