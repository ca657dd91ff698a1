"""attncli in shell pipelines, through the real console script in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line, script

LINES = "The cat sat on the mat .\nA dog barked .\n\nBirds sing at dawn .\n"


def test_stdin_batch_gives_one_json_line_per_sentence():
    proc = script("run", "--json", "-H", "2", input=LINES)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["text"] for r in rows] == ["The cat sat on the mat .", "A dog barked .", "Birds sing at dawn ."]
    assert [r["line"] for r in rows] == [1, 2, 4]  # the empty line 3 is skipped
    assert rows[2]["files"][0] == "attn_out/s3_head_1.png"
    for k in (1, 2, 3):
        for name in (f"s{k}_head_1.png", f"s{k}_head_2.png", f"s{k}_heads.png"):
            assert (Path("attn_out") / name).is_file()


def test_dash_reads_stdin_too():
    proc = script("run", "-", "--json", "--no-plot", input="one two three\n")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["tokens"] == ["one", "two", "three"]


def test_a_bad_line_is_reported_and_the_others_still_run():
    text = "good line here\n   \n" + " ".join(["w"] * 20) + "\nlast good line\n"
    proc = script("run", "--json", "--no-plot", "--max-tokens", "10", input=text)
    assert proc.returncode == 2
    assert len(proc.stdout.decode().splitlines()) == 2
    err = proc.stderr.decode().splitlines()
    assert len(err) == 2 and all(e.startswith("error: line ") for e in err)
    assert "line 2" in err[0] and "line 3" in err[1] and "--max-tokens 10" in err[1]
    assert "Traceback" not in proc.stderr.decode()


def test_fail_fast_stops_at_the_first_bad_line():
    proc = script("run", "--json", "--no-plot", "--fail-fast", input="ok one\n  \nok two\n")
    assert proc.returncode == 2
    assert len(proc.stdout.decode().splitlines()) == 1


def test_quiet_prints_only_paths_that_exist():
    proc = script("run", "The cat sat .", "-q", "-H", "2", "--npz", "m.npz")
    assert proc.returncode == 0
    paths = proc.stdout.decode().splitlines()
    assert paths == ["attn_out/head_1.png", "attn_out/head_2.png", "attn_out/heads.png", "m.npz"]
    assert all(Path(p).is_file() for p in paths)
    assert proc.stderr == b""


def test_npz_holds_every_matrix_without_pickle():
    assert cli("run", "The cat sat on the mat .", "-H", "3", "--npz", "out.npz", "--no-plot").code == 0
    with np.load("out.npz", allow_pickle=False) as z:
        assert list(z["tokens"]) == ["The", "cat", "sat", "on", "the", "mat", "."]
        assert z["I"].shape == (8, 7)
        assert z["Wq"].shape == z["Wk"].shape == (3, 2, 8) and z["Wv"].shape == (3, 2, 8)
        assert z["Q"].shape == (3, 2, 7) and z["V"].shape == (3, 2, 7)
        assert z["A"].shape == z["A_prime"].shape == (3, 7, 7)
        assert z["O_heads"].shape == (3, 2, 7) and z["Wo"].shape == (8, 6) and z["O"].shape == (8, 7)
        assert np.allclose(z["O"], z["Wo"] @ z["O_heads"].reshape(6, 7))
        assert np.allclose(z["Q"][1], z["Wq"][1] @ z["I"])


def test_npz_per_line_in_a_batch():
    proc = script("run", "--no-plot", "--npz", "m.npz", "-q", input="a b\nc d e\n")
    assert proc.stdout.decode().splitlines() == ["m_s1.npz", "m_s2.npz"]
    with np.load("m_s2.npz", allow_pickle=False) as z:
        assert z["A"].shape == (1, 3, 3)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_same_inputs_give_byte_identical_files(tmp_path, fmt):
    for d in ("a", "b"):
        proc = script(
            "run",
            "The cat sat on the mat .",
            "-H",
            "2",
            "--image-format",
            fmt,
            "-o",
            d,
            "--npz",
            f"{d}/m.npz",
            "--json",
        )
        assert proc.returncode == 0, proc.stderr
        (tmp_path / d / "out.json").write_bytes(proc.stdout.replace(d.encode() + b"/", b""))
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert f"heads.{fmt}" in names and "m.npz" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize(
    "args",
    [
        "run --json --no-plot",  # JSON Lines
        "run --no-plot",  # Rich tables (Rich has its own broken-pipe exit)
        "run -q",  # paths
        "tokens",
    ],
)
def test_head_n_1_ends_quietly_with_141(args):
    """A reader that goes away ends the writer quietly, with the shell's SIGPIPE status
    (128 + 13), as `yes | head` does: neither a traceback nor Click's or Rich's exit 1."""
    text = "".join(f"sentence number {k} .\n" for k in range(300))
    shell = f"{sys.executable} -m attncli {args} | head -n 1; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", shell], input=text.encode(), capture_output=True, timeout=120)
    assert len(proc.stdout.decode().splitlines()) == 1
    assert proc.stderr == b"", proc.stderr
    assert proc.returncode == 141


def test_the_quick_exit_still_delivers_all_of_a_large_output():
    """The console script ends without Python's teardown; what it wrote must all arrive
    (here ~1 MB of JSON, far more than a pipe holds) and the exit code must be kept."""
    words = " ".join(f"w{k}" for k in range(150))
    proc = script("run", words, "-H", "8", "--json", "--no-plot", env={"PYTHONUNBUFFERED": ""})
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["n"] == 150 and len(obj["heads"]) == 8 and len(proc.stdout) > 500_000
    bad = script("run", "", "--json")
    assert bad.returncode == 2 and bad.stdout == b""
    assert one_error_line(bad.stderr.decode()).startswith("error: the text is empty")


def test_a_batch_turns_the_cycle_collector_back_on():
    """The console script starts with gc off (start-up objects live to the end); one
    sentence keeps it off, a batch (which may run for long) turns it on."""
    import gc

    from attncli.cli.batch import run_batch
    from attncli.cli.inputs import Sentence

    seen = []
    try:
        gc.disable()
        run_batch([Sentence("a", None, None)], lambda s: seen.append(gc.isenabled()))
        assert seen == [False]
        run_batch([Sentence("a", 1, 1), Sentence("b", 2, 2)], lambda s: seen.append(gc.isenabled()))
        assert seen == [False, True, True]
    finally:
        gc.enable()


def test_no_color_and_a_pipe_give_plain_text():
    for env in ({"NO_COLOR": "1", "FORCE_COLOR": ""}, {}):
        proc = script("run", "The cat sat .", "--no-plot", "--preview", env=env)
        assert proc.returncode == 0
        assert b"\x1b[" not in proc.stdout, env


def test_unwritable_folder_is_exit_1_and_nothing_written(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        proc = script("run", "a b c", "-o", str(locked / "figs"), "--npz", "m.npz")
        assert proc.returncode == 1
        assert str(locked / "figs") in one_error_line(proc.stderr.decode())
        assert not Path("m.npz").exists()
    finally:
        locked.chmod(0o700)


def test_a_file_in_the_way_of_the_folder_is_exit_1():
    Path("taken").write_text("x")
    proc = script("run", "a b c", "-o", "taken", "--npz", "m.npz")
    assert proc.returncode == 1
    assert "taken" in one_error_line(proc.stderr.decode())
    assert not Path("m.npz").exists()


def test_no_partial_files_are_left_behind():
    assert script("run", "a b c", "-H", "2").returncode == 0
    assert not [p for p in Path("attn_out").iterdir() if p.name.startswith(".")]


def test_non_utf8_stdin_names_the_line_runs_the_others_and_encoding_fixes_it():
    data = "caf\u00e9 ok\n".encode("utf-8") + "na\u00efve line\n".encode("latin-1") + b"last one\n"
    proc = script("run", "--no-plot", "--json", input=data)
    assert proc.returncode == 2
    assert "line 2" in one_error_line(proc.stderr.decode())
    assert [json.loads(x)["line"] for x in proc.stdout.splitlines()] == [1, 3]
    proc = script("run", "--no-plot", "--json", "--encoding", "latin-1", input="na\u00efve\n".encode("latin-1"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["tokens"] == ["na\u00efve"]


def test_unknown_encoding_is_a_usage_error():
    proc = script("run", "--encoding", "klingon", input="a\n")
    assert proc.returncode == 2 and "--encoding" in one_error_line(proc.stderr.decode())


def test_empty_stdin_is_an_error():
    proc = script("run", input="\n\n")
    assert proc.returncode == 2 and "empty" in one_error_line(proc.stderr.decode())


def test_ctrl_c_exits_130_with_one_line():
    exe = Path(sys.executable).with_name("attncli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attncli"]
    proc = subprocess.Popen(cmd + ["run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)  # waiting for stdin
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert one_error_line(err.decode()) == "error: interrupted"


def test_tokens_table_and_json():
    proc = script("tokens", "Don't panic.", "--json")
    obj = json.loads(proc.stdout)
    assert obj["tokens"] == ["Don", "'", "t", "panic", "."]
    assert obj["offsets"][3] == [6, 11]
    ran = cli("tokens", "Don't panic.", "-t", "char")
    assert ran.code == 0 and "│ 10 │ c " in ran.stdout.replace("  ", " ")


def test_tokens_batch_is_json_lines():
    proc = script("tokens", "--json", input="a b\nc\n")
    assert [json.loads(x)["n"] for x in proc.stdout.decode().splitlines()] == [2, 1]


def test_float32_values_survive_the_json_round_trip_exactly():
    from hypothesis import given
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    from attncli.export import nested

    @given(arrays(np.float32, st.integers(1, 50), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
    def check(a):
        back = np.array(json.loads(json.dumps(nested(a))), dtype=np.float32)
        assert np.array_equal(back, a)

    check()


def test_the_fast_float32_json_writes_what_json_itself_would():
    """float32 arrays are written a row at a time with %.9g; the parsed values and their
    types (float, null for ±inf/NaN) must equal json's own output of the same data."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import array_shapes, arrays

    from attncli.export import dumps, float32_json, nested

    special = st.sampled_from([0.0, -0.0, 1.0, -3.0, 1e9, 123456789.0, 1e-7, 3e38, np.inf, -np.inf, np.nan])
    elements = st.floats(width=32) | special

    def same(x, y):  # the same float32 (decimal digits may differ), the same JSON type
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
        return type(x) is type(y) and (x is None or np.float32(x) == np.float32(y))

    @settings(max_examples=300)
    @given(arrays(np.float32, array_shapes(min_dims=1, max_dims=4, max_side=5), elements=elements))
    def check(a):
        ours = json.loads(float32_json(a))
        assert same(ours, json.loads(json.dumps(nested(a)))), ours
        back = np.array(json.loads(float32_json(a).replace("null", "NaN")), dtype=np.float32)
        assert np.array_equal(back, np.where(np.isfinite(a), a, np.nan), equal_nan=True)

    check()
    obj = {"text": "a \u0000 b", "A": np.eye(2, dtype=np.float32), "rest": [np.zeros((1, 1), np.float32), 2]}
    assert json.loads(dumps(obj)) == {"text": "a \u0000 b", "A": [[1.0, 0.0], [0.0, 1.0]], "rest": [[[0.0]], 2]}


def test_progress_bar_goes_to_a_terminal_stderr_and_never_to_stdout():
    import os
    import pty
    import threading

    master, slave = pty.openpty()
    seen = bytearray()

    def drain():  # read the terminal side, or the child blocks on a full pty
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    exe = Path(sys.executable).with_name("attncli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attncli"]
    text = "".join(f"sentence number {k} here .\n" for k in range(400))
    proc = subprocess.Popen(
        cmd + ["run", "--json", "--no-plot"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100"},
    )
    out, _ = proc.communicate(text.encode(), timeout=120)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 0
    assert len(out.decode().splitlines()) == 400 and b"\x1b" not in out
    assert b"sentences" in bytes(seen)  # the Rich progress bar, on the terminal only
