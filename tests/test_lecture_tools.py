"""compare, the style preset, the trace for slides, shell completion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line, script
from PIL import Image

SENTENCE = "The cat sat on the mat ."


def test_compare_draws_one_figure_and_prints_each_settings_json():
    ran = cli("compare", SENTENCE, "--norm", "softmax,sparsemax,relu", "--json")
    assert ran.code == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [o["setting"]["norm"] for o in lines] == ["softmax", "sparsemax", "relu"]
    assert all(o["files"] == ["attn_out/compare.png"] for o in lines)
    run = json.loads(cli("run", SENTENCE, "--norm", "relu", "--json", "--no-plot").stdout)
    assert np.allclose(lines[2]["heads"][0]["A_prime"], run["heads"][0]["A_prime"])
    assert Image.open("attn_out/compare.png").size[0] > Image.open("attn_out/compare.png").size[1]


def test_compare_temperatures_and_masks_make_a_panel_each():
    from attncli.core.compare import compare, parse_list
    from attncli.core.settings import Settings

    lists = {"temperature": parse_list("temperature", "0.5,1,2"), "causal": parse_list("causal", "off,on")}
    results = compare(SENTENCE, Settings(), lists)
    assert [name for name, _ in results][:2] == ["T = 0.5, not causal", "T = 0.5, causal"]
    assert len(results) == 6
    ran = cli("compare", SENTENCE, "--temperature", "0.5,1,2")
    assert ran.code == 0 and "T = 0.5" in ran.stdout and "wrote attn_out/compare.png" in ran.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--norm", "softmax,nope"], "--norm"),
        (["--causal", "maybe"], "--causal"),
        (["--temperature", "x"], "--temperature"),
    ],
)
def test_compare_refuses_bad_lists_in_one_line(args, message):
    ran = cli("compare", SENTENCE, *args)
    assert ran.code == 2 and message in one_error_line(ran.stderr)


def test_style_preset_fills_in_what_the_command_line_leaves_out():
    Path("attncli.toml").write_text('theme = "dark"\ndpi = 100\n[figures]\nfont-size = 14\n')
    assert cli("run", SENTENCE, "-q").code == 0
    im = Image.open("attn_out/head_1.png")
    assert round(im.info["dpi"][0]) == 100 and im.convert("RGB").getpixel((2, 2)) != (255, 255, 255)
    assert cli("run", SENTENCE, "-q", "--dpi", "120", "--theme", "light").code == 0
    im = Image.open("attn_out/head_1.png")
    assert round(im.info["dpi"][0]) == 120 and im.convert("RGB").getpixel((2, 2)) == (255, 255, 255)
    Path("other.toml").write_text("figsize = [5, 4]\ndpi = 100\n")
    assert cli("run", SENTENCE, "-q", "--style", "other.toml").code == 0
    assert Image.open("attn_out/head_1.png").size == (500, 400)


@pytest.mark.parametrize(
    "body, message", [("colour = 1\n", "unknown key"), ("dpi = 'x'\n", "dpi"), ("dpi = \n", "TOML")]
)
def test_a_bad_preset_is_one_error_line(body, message):
    Path("bad.toml").write_text(body)
    ran = cli("run", SENTENCE, "--style", "bad.toml")
    assert ran.code == 2 and message in one_error_line(ran.stderr)


def test_trace_formats_for_slides():
    md = cli("run", SENTENCE, "-H", "2", "--trace-format", "markdown", "--no-plot").stdout
    assert "| head | matrix | = | shape | size |" in md and "| 1–2 | A'_h |" in md
    tex = cli("run", SENTENCE, "-H", "2", "--trace-format", "latex", "--no-plot").stdout
    assert r"\begin{tabular}" in tex and r"$K^{\top}$ $Q$ / $\sqrt{q}$" in tex and r"$7 \times 7$" in tex
    bad = cli("run", SENTENCE, "--trace-format", "html")
    assert bad.code == 2 and "--trace-format" in one_error_line(bad.stderr)


def test_trace_figure_is_written():
    ran = cli("run", SENTENCE, "--trace-figure", "-q")
    assert "attn_out/trace.png" in ran.stdout.split()
    assert Image.open("attn_out/trace.png").size[0] > 1000


def test_shell_completion_is_available():
    assert "--install-completion" in cli("--help").stdout
    done = script(env={"_ATTNCLI_COMPLETE": "source_bash"})  # what --show-completion prints for bash
    assert done.returncode == 0 and b"_attncli_completion" in done.stdout, done.stderr
    done = script(env={"_ATTNCLI_COMPLETE": "complete_bash", "COMP_WORDS": "attncli run --the", "COMP_CWORD": "2"})
    assert b"--theme" in done.stdout
