"""Figures: formats, sizes, themes, colours read back from the pixels, long inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from PIL import Image

from attncli.figures.common import Scale, text_colour
from attncli.figures.heatmap import HeatmapFigure, Style
from attncli.labels import token_labels

SENTENCE = "The cat sat on the mat ."


def test_svg_parses_as_xml_and_pdf_starts_with_pdf():
    assert cli("run", SENTENCE, "-H", "2", "--image-format", "svg").code == 0
    for name in ("head_1.svg", "head_2.svg", "heads.svg"):
        root = ET.parse(Path("attn_out") / name).getroot()
        assert root.tag.endswith("svg")
    assert cli("run", SENTENCE, "--image-format", "pdf", "-o", "pdf").code == 0
    assert Path("pdf/head_1.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "dpi, figsize, pixels", [(100, "6,5", (600, 500)), (200, "4,4", (800, 800)), (72, "10,3", (720, 216))]
)
def test_png_pixel_size_follows_dpi_and_figsize(dpi, figsize, pixels):
    assert cli("run", SENTENCE, "--dpi", str(dpi), "--figsize", figsize).code == 0
    assert Image.open("attn_out/head_1.png").size == pixels


@pytest.mark.parametrize("command", [["run", SENTENCE, "-H", "2"], ["run", SENTENCE, "--image-format", "pdf"]])
def test_a_figure_too_large_to_draw_is_refused_before_any_work(command):
    """48,000 × 48,000 pixels would exhaust memory (the process was killed): one line, exit 2."""
    ran = cli(*command, "--dpi", "1200", "--figsize", "40,40")
    assert ran.code == 2 and "too large to draw" in one_error_line(ran.stderr)
    assert not Path("attn_out").exists()


def test_the_pixel_limit_also_holds_for_fitted_sizes():
    from attncli.figures.style import check_pixels

    check_pixels(40, 30, 300)  # a poster: 108 million pixels
    with pytest.raises(Exception, match="too large to draw"):
        check_pixels(30, 3, 1200)  # 36,000 pixels wide


def test_default_png_dpi_is_recorded():
    cli("run", SENTENCE, "--dpi", "120")
    assert round(Image.open("attn_out/head_1.png").info["dpi"][0]) == 120


def test_transparent_png_has_transparent_corners():
    assert cli("run", SENTENCE, "-H", "2", "--transparent").code == 0
    for name in ("head_1.png", "heads.png"):
        im = np.array(Image.open(Path("attn_out") / name).convert("RGBA"))
        assert im.shape[2] == 4
        for corner in (im[0, 0], im[0, -1], im[-1, 0], im[-1, -1]):
            assert corner[3] == 0


def test_dark_theme_has_a_dark_background_and_light_is_white():
    cli("run", SENTENCE, "-H", "2", "--theme", "dark", "-o", "dark")
    cli("run", SENTENCE, "-H", "2", "-o", "light")
    for name in ("head_1.png", "heads.png"):
        dark = np.array(Image.open(Path("dark") / name).convert("RGB"))[2, 2].astype(int)
        light = np.array(Image.open(Path("light") / name).convert("RGB"))[2, 2].astype(int)
        assert dark.sum() < 3 * 60 and light.tolist() == [255, 255, 255]


def _pixel_of_cell(fig: HeatmapFigure, image: np.ndarray, i: int, j: int) -> np.ndarray:
    x, y = fig.ax.transData.transform((j, i))
    return image[int(image.shape[0] - y), int(x)]


@pytest.mark.parametrize("fmt_path", ["fast", "slow"])
def test_cell_colour_matches_its_value_in_the_colour_map(tmp_path, fmt_path):
    M = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, 0.1], [0.33, 0.66, 0.9]])
    labels = ["a", "b", "c"]
    fig = HeatmapFigure(labels, labels, Style(annotate=False), "q", "k", cbar_label="A'", scale=Scale(0.0, 1.0, False))
    if fmt_path == "fast":
        fig.freeze()
    fig.set(M, "known")
    fig.save(tmp_path / "m.png")
    image = np.array(Image.open(tmp_path / "m.png").convert("RGB")).astype(int)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for i in range(3):
        for j in range(3):
            expected = np.round(np.array(cmap(M[i, j])[:3]) * 255).astype(int)
            got = _pixel_of_cell(fig, image, i, j)
            assert np.abs(got - expected).max() <= 2, (i, j, got, expected)


def test_the_transposed_figures_cell_i_j_holds_A_prime_j_i(tmp_path):
    """--transpose flips the picture (rows = queries) and only the picture: the JSON keeps
    the notes' layout, and the cell in row i, column j of the figure shows A'[j, i]."""
    import json

    from attncli.core.pipeline import run
    from attncli.core.settings import Settings
    from attncli.figures.select import figures
    from attncli.view import Shown

    a = json.loads(cli("run", "x y z w", "--json", "--no-plot").stdout)
    b = json.loads(cli("run", "x y z w", "--json", "--no-plot", "--transpose").stdout)
    assert a["heads"] == b["heads"]
    result = run("x y z w", Settings())
    style = Style(transpose=True, annotate=False, vmin=0.0, vmax=1.0)
    (path,) = figures(Shown(result), tmp_path, style)
    image = np.array(Image.open(path).convert("RGB")).astype(int)
    labels = token_labels(result.tokens.tokens)
    frame = HeatmapFigure(labels, labels, style, "k", "q", cbar_label="A'", scale=Scale(0.0, 1.0, False))
    M, cmap = result.A_prime[0, 0], matrix_colours()
    assert not np.allclose(M, M.T)
    for i in range(4):
        for j in range(4):
            expected = np.round(np.array(cmap(M[j, i])[:3]) * 255).astype(int)
            assert np.abs(_pixel_of_cell(frame, image, i, j) - expected).max() <= 2, (i, j)


def matrix_colours():
    import matplotlib

    return matplotlib.colormaps["viridis"]


def test_text_colour_contrasts_with_the_cell():
    assert text_colour((0.99, 0.9, 0.14, 1)) == "#000000"  # yellow cell, black text
    assert text_colour((0.27, 0.0, 0.33, 1)) == "#ffffff"  # dark purple, white text


def test_duplicate_tokens_are_told_apart_only_where_needed():
    assert token_labels(["the", "cat", "the", "the"]) == ["the", "cat", "the₂", "the₃"]
    assert token_labels(["a", "b"]) == ["a", "b"]
    assert token_labels(["x" * 30])[0].endswith("…")


@pytest.mark.parametrize("n", [3, 12, 60, 512])
def test_tick_labels_never_overlap_and_cells_stay_square(n):
    """Drawn, the tick labels' boxes lie apart on both axes, inside the figure, and the
    plot area is square."""
    labels = token_labels([f"tok{k}" for k in range(n)])
    fig = HeatmapFigure(labels, labels, Style(), "q", "k", cbar_label="A'", scale=Scale(0, 1, False))
    fig.fig.canvas.draw()
    renderer = fig.fig.canvas.get_renderer()
    width, height = fig.fig.canvas.get_width_height()
    for ticks, lo, hi in ((fig.ax.get_yticklabels(), "y0", "y1"), (fig.ax.get_xticklabels(), "x0", "x1")):
        boxes = sorted((getattr(b, lo), getattr(b, hi)) for b in (t.get_window_extent(renderer) for t in ticks))
        assert all(a[1] <= b[0] + 0.5 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
        for t in ticks:
            box = t.get_window_extent(renderer)
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
    bbox = fig.ax.get_position()
    w, h = fig.fig.get_size_inches()
    assert abs(bbox.width * w - bbox.height * h) < 1e-9  # square plot area, square cells


def test_a_512_token_figure_is_produced():
    text = " ".join(f"w{k % 37}" for k in range(512))
    ran = cli("run", text, "-H", "2", "-q")
    assert ran.code == 0
    assert Image.open("attn_out/head_1.png").size[0] > 1000


def test_annotations_default_on_for_short_off_for_long(tmp_path):
    short = HeatmapFigure(list("abc"), list("abc"), Style(), "q", "k", cbar_label="A'", scale=Scale(0, 1, False))
    long = HeatmapFigure(
        [str(k) for k in range(80)],
        [str(k) for k in range(80)],
        Style(),
        "q",
        "k",
        cbar_label="A'",
        scale=Scale(0, 1, False),
    )
    assert short.texts and not long.texts
    forced = HeatmapFigure(
        list("abc"), list("abc"), Style(annotate=False), "q", "k", cbar_label="A'", scale=Scale(0, 1, False)
    )
    assert not forced.texts


def test_shared_scale_and_vmin_vmax():
    from attncli.figures.common import scales

    a, b = np.array([[0.0, 0.2]]), np.array([[0.0, 0.8]])
    assert scales([a, b], Style(), bounded=True)[0] == scales([a, b], Style(), bounded=True)[1]
    assert scales([a, b], Style(), bounded=False)[0].vmax == pytest.approx(0.2)
    signed = scales([np.array([[-3.0, 1.0]])], Style(), bounded=False)[0]
    assert (signed.vmin, signed.vmax, signed.signed) == (-3.0, 3.0, True)
    fixed = scales([a], Style(vmin=0.1, vmax=0.3), bounded=True)[0]
    assert (fixed.vmin, fixed.vmax) == (0.1, 0.3)


def test_grid_of_heads_and_no_grid():
    cli("run", SENTENCE, "-H", "4", "--no-grid")
    assert not Path("attn_out/heads.png").exists()
    cli("run", SENTENCE, "-H", "4", "-o", "g")
    w, h = Image.open("g/heads.png").size
    assert 0.6 < w / h < 1.8  # a near-square 2×2 layout


def test_many_heads_in_parallel_give_the_same_bytes_as_one_process(tmp_path, monkeypatch):
    from attncli.figures import heatmap as plot

    cli("run", SENTENCE, "-H", "8", "-o", "par")
    monkeypatch.setattr(plot, "worker_count", lambda panels: 1)
    cli("run", SENTENCE, "-H", "8", "-o", "seq")
    for k in range(1, 9):
        assert Path(f"par/head_{k}.png").read_bytes() == Path(f"seq/head_{k}.png").read_bytes()
    assert Path("par/heads.png").read_bytes() == Path("seq/heads.png").read_bytes()


def test_the_previews_darkest_cell_is_the_largest_weight():
    """Without colour the preview draws shades ' ░▒▓█'; the darkest (█) cells are where
    A' is largest, and the lightest where it is smallest."""
    import json

    ran = cli("run", "the cat sat on a mat", "--preview", "--no-plot")
    obj = json.loads(cli("run", "the cat sat on a mat", "--json", "--no-plot").stdout)
    assert ran.code == 0 and "rows: key i · columns: query j" in ran.stdout
    M = np.array(obj["heads"][0]["A_prime"])
    lines = ran.stdout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("head 1")) + 1
    offset = max(len(t) for t in obj["tokens"]) + 1  # right-aligned token labels, then the cells
    rows = [lines[start + i][offset:].ljust(2 * len(M)) for i in range(len(M))]
    cells = np.array([[" ░▒▓█".index(row[2 * j]) for j in range(len(M))] for row in rows])
    assert cells.flat[np.argmax(M)] == cells.max() == 4
    assert cells.flat[np.argmin(M)] == cells.min()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image-format", "gif"], "--image-format"),
        (["--theme", "blue"], "--theme"),
        (["--cmap", "nonesuch"], "--cmap"),
        (["--figsize", "wide"], "--figsize"),
        (["--dpi", "0"], "--dpi"),
        (["--vmin", "1", "--vmax", "0"], "--vmin"),
        (["--matrix", "B"], "--matrix"),
        (["--font-size", "0"], "--font-size"),
    ],
)
def test_bad_figure_options(args, fragment):
    ran = cli("run", SENTENCE, *args)
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)
    assert not Path("attn_out").exists()
