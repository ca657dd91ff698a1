"""The drawing pool (persistent forked workers fed jobs), the PNG encoder, and a batch's
figures drawn in the pool: the same pixels and bytes as one sentence drawn alone, paths in
input order, --fail-fast leaving nothing of the lines after the bad one."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import script
from PIL import Image

from attncli import stop
from attncli.errors import AttnError
from attncli.figures import pool as drawing
from attncli.figures.fastpng import encode_png

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool forks")


def whoami(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def fails(code: int) -> None:
    raise AttnError("this job fails", code)


def dies() -> None:
    os._exit(3)


@needs_fork
def test_the_pool_answers_each_job_in_order_from_the_same_two_workers():
    with drawing.session(2) as pool:
        assert pool is not None and drawing.active() is pool
        tickets = [pool.submit(whoami, k) for k in range(12)]
        answers = [pool.result(t) for t in reversed(tickets)][::-1]  # collected in any order
        assert [sq for _, sq in answers] == [k * k for k in range(12)]
        pids = {pid for pid, _ in answers}
        assert len(pids) <= 2 and os.getpid() not in pids  # persistent workers, not a fork per job
        assert pids <= stop.children
    assert drawing.active() is None and not (pids & stop.children)
    for pid in pids:  # ended and waited for
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@needs_fork
def test_a_jobs_error_comes_back_with_its_code_and_the_workers_keep_working():
    with drawing.session(2) as pool:
        assert pool is not None
        with pytest.raises(AttnError) as err:
            pool.result(pool.submit(fails, 2))
        assert err.value.code == 2 and err.value.message == "this job fails"
        assert pool.map([(whoami, (3,)), (whoami, (4,))])[1][1] == 16


@needs_fork
def test_a_worker_that_dies_is_an_error_not_a_hang():
    with drawing.session(2) as pool:
        assert pool is not None
        with pytest.raises(AttnError) as err:
            pool.result(pool.submit(dies))
        assert err.value.code == 1 and "ended early" in err.value.message


def test_run_jobs_without_a_pool_runs_here():
    assert drawing.run_jobs([(whoami, (2,)), (whoami, (5,))], workers=1) == [(os.getpid(), 4), (os.getpid(), 25)]


@pytest.mark.parametrize("alpha", [False, True])
def test_the_png_encoder_gives_the_pixels_and_dpi_it_was_given(alpha):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[10:20] = rgba[10]  # repeated rows, as inside heatmap cells
    image = Image.open(io.BytesIO(encode_png(rgba, 150, alpha)))
    assert image.mode == ("RGBA" if alpha else "RGB")
    assert np.array_equal(np.asarray(image), rgba if alpha else rgba[..., :3])
    assert image.info["dpi"] == pytest.approx((150, 150), abs=0.02)  # stored as pixels per metre
    rgb = np.ascontiguousarray(rgba[..., :3])  # an RGB bitmap as the fast path paints it
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(rgb, 150, False)))), rgb)


LINES = ["the cat sat on the mat", "a dog ran", "birds sing in the old garden near the houses"]


def test_a_batch_draws_each_sentence_as_that_sentence_alone(tmp_path):
    """Figures drawn in the pool's warm workers (frames, glyphs and measures kept from
    sentence to sentence) are byte for byte those of the sentence run alone."""
    batch = script("run", "-H", "4", "-q", "-o", "batch", input="\n".join(LINES) + "\n", cwd=tmp_path)
    assert batch.returncode == 0, batch.stderr.decode()
    paths = batch.stdout.decode().splitlines()
    stems = ("head_1", "head_2", "head_3", "head_4", "heads")
    assert paths == [f"batch/s{s}_{stem}.png" for s in (1, 2, 3) for stem in stems]  # in input order
    for s, line in enumerate(LINES, 1):
        alone = script("run", line, "-H", "4", "-q", "-o", f"alone{s}", cwd=tmp_path)
        assert alone.returncode == 0
        for stem in stems:
            drawn = (tmp_path / f"batch/s{s}_{stem}.png").read_bytes()
            assert drawn == (tmp_path / f"alone{s}/{stem}.png").read_bytes()


def test_fail_fast_removes_what_was_drawn_after_the_bad_line(tmp_path):
    """Line 2 fails while drawing (--query 3 of a 2-token line); line 3 was already sent
    to the pool: its figure is removed, and only line 1 is listed and printed."""
    ran = script(
        "run", "--view", "lines", "--query", "3", "-q", "-o", "out", "--fail-fast",
        input="a b c d\na b\na b c d e\n", cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 2
    assert ran.stdout.decode().splitlines() == ["out/s1_lines_head_1.png"]
    assert sorted(p.name for p in Path(tmp_path, "out").iterdir()) == ["attncli-manifest.json", "s1_lines_head_1.png"]
    assert "line 2" in ran.stderr.decode()
