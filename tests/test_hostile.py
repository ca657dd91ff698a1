"""Hostile and careless input, one test per class of issue 13: nothing damaged, nothing
hangs, nothing escapes to the terminal, one line and the documented exit code."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line, script
from helpers import write_bert

from attncli.labels import safe, token_labels

CONTROL = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x202E, 0x2066)]


def no_control(text: str) -> bool:
    return not any(c in text for c in CONTROL if c != "\n")


# 1. writing over what is not ours


def test_npz_to_dev_null_leaves_the_device_alone():
    assert cli("run", "a b", "--no-plot", "--npz", "/dev/null").code == 0
    assert Path("/dev/null").is_char_device()


def test_npz_to_dev_stdout_writes_into_the_pipe():
    proc = script("run", "a b", "--no-plot", "-q", "--npz", "/dev/stdout")
    assert proc.returncode == 0 and proc.stdout.startswith(b"PK")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_fifo_nobody_reads_is_refused_not_waited_on(tmp_path):
    os.mkfifo("f")
    proc = script("run", "a b", "--no-plot", "--npz", "f", timeout=20)
    assert proc.returncode == 2 and "no one is reading" in one_error_line(proc.stderr.decode())
    proc = script("run", "a b", "--no-plot", "-e", "f", timeout=20)  # -e on a FIFO: refused, not a hang
    assert proc.returncode == 2 and "not a regular file" in one_error_line(proc.stderr.decode())


def test_a_link_to_a_file_keeps_its_link():
    Path("real.npz").write_bytes(b"")
    Path("link.npz").symlink_to("real.npz")
    assert cli("run", "a b", "--no-plot", "--npz", "link.npz").code == 0
    assert Path("link.npz").is_symlink() and zipfile.is_zipfile("real.npz")


def test_npz_on_a_figure_of_this_run_is_refused():
    ran = cli("run", "a b", "--npz", "attn_out/head_1.png")
    assert ran.code == 2 and "a figure this run writes" in one_error_line(ran.stderr)


# 2. full disks and short writes


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_full_disk_on_stdout_is_exit_1(unbuffered):
    env = {"PYTHONUNBUFFERED": unbuffered} if unbuffered else {}
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("attncli")), "run", "a b c " * 150, "-H", "4", "--json", "--no-plot"],
            stdout=full,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
    assert proc.returncode == 1 and "No space left" in one_error_line(proc.stderr.decode())


def test_full_disk_on_a_file_is_exit_1():
    ran = cli("run", "a b", "--no-plot", "--npz", "/dev/full")
    assert ran.code == 1 and "No space left" in one_error_line(ran.stderr)


def test_closed_stdout_and_stderr():
    exe = str(Path(sys.executable).with_name("attncli"))
    proc = subprocess.run(f"{exe} run 'a b' --no-plot >&-", shell=True, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and "closed" in one_error_line(proc.stderr.decode())
    proc = subprocess.run(f"{exe} run 'a b' --no-plot --json 2>&-", shell=True, stdout=subprocess.PIPE)
    assert proc.returncode == 0 and json.loads(proc.stdout)["n"] == 2


def test_ascii_stdout_still_prints():
    proc = script("run", "caf\u00e9 \u2192 x", "--no-plot", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and b"caf\\xe9" in proc.stdout


# 4. terminal escapes


def test_safe_escapes_every_control_character():
    assert safe("a\x1b]52;c;x\x07\n\u202e\x9b") == "a\\x1b]52;c;x\\x07\\n\\u202e\\x9b"
    assert safe("[bold]x", markup=True) == "\\[bold]x"
    assert all(no_control(label) for label in token_labels(CONTROL))


def test_no_escape_reaches_the_terminal_from_a_sentence_or_a_path():
    evil = "clear\x1b[2J title\x1b]0;pwned\x07 \u202eevil [bold]x[/bold]"
    for args in (("run", evil, "--no-plot"), ("tokens", evil), ("explain", evil)):
        ran = cli(*args)
        assert ran.code == 0 and no_control(ran.stdout) and "\\x1b" in ran.stdout, args
    ran = cli("run", "a", "--npz", "bad\x1b[2J\nerror: forged/x.npz", "--no-plot")
    assert ran.code == 1 and no_control(ran.stderr) and one_error_line(ran.stderr)


def test_no_escape_from_a_model_config_or_vocabulary(tmp_path):
    write_bert(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["_name_or_path"] = "\x1b]0;pwned\x07\x1b[2J"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    ran = cli("model", str(tmp_path / "m"), "the cat", "--no-plot")
    assert ran.code == 0 and no_control(ran.stdout)


# 5. memory and time


def test_stdin_streams_first_lines_out_before_the_input_ends():
    exe = str(Path(sys.executable).with_name("attncli"))
    start = time.monotonic()
    proc = subprocess.run(
        f"yes 'the cat' | {exe} run --json --no-plot | head -3", shell=True, capture_output=True, timeout=60
    )
    assert len(proc.stdout.splitlines()) == 3 and time.monotonic() - start < 30


def test_config_with_a_billion_layers_is_refused(tmp_path):
    write_bert(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["num_hidden_layers"] = 1_000_000_000
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    ran = cli("model", str(tmp_path / "m"), "a", "--no-plot")
    assert ran.code == 2 and "num_hidden_layers" in one_error_line(ran.stderr)


def test_safetensors_shape_that_overflows(tmp_path):
    header = json.dumps({"x": {"dtype": "F32", "shape": [2**40, 2**40, 2**4], "data_offsets": [0, 0]}}).encode()
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    ran = cli("run", "a", "-e", str(tmp_path / "x.safetensors"), "--no-plot")
    assert ran.code == 2 and "needs" in one_error_line(ran.stderr)


def test_zip_bomb_is_refused_before_it_expands(monkeypatch, tmp_path):
    from attncli import limits

    monkeypatch.setattr(limits, "NPZ_MEMBER_LIMIT", 1 << 20)
    np.savez_compressed(tmp_path / "w.npz", Wq=np.zeros((64, 64, 64)), Wk=np.zeros(1), Wv=np.zeros(1))
    ran = cli("run", "a", "--weights", str(tmp_path / "w.npz"), "--no-plot")
    assert ran.code == 2 and "limit" in one_error_line(ran.stderr)


def test_more_memory_than_there_is_is_refused_with_the_amount(monkeypatch):
    from attncli import limits

    monkeypatch.setattr(limits, "physical_memory", lambda: 1 << 20)
    ran = cli("run", " ".join(["w"] * 300), "--no-plot", "--json")
    assert ran.code == 2 and "would need about" in one_error_line(ran.stderr)


def test_a_long_line_in_a_text_vectors_file_is_linear(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"the " + b"1.0 " * 3_000_000 + b"\ncat 1.0 2.0\n")
    start = time.monotonic()
    ran = cli("run", "the cat", "-e", str(path), "--no-plot")
    assert ran.code == 2 and time.monotonic() - start < 20


# 6. text the figure code reads as code


def test_dollars_are_text_in_figures():
    ran = cli("run", "it costs $$ now $_$", "-q")
    assert ran.code == 0 and "head_1.png" in ran.stdout


def test_a_bad_line_does_not_abort_the_batch():
    ran = cli("run", "--json", "--no-plot", input="good line\n   \nanother good one\n")
    assert ran.code == 2 and len(ran.stdout.splitlines()) == 2 and one_error_line(ran.stderr)


# 7, 8. exceptions that are not Exception; generic or wrong messages


def test_panic_is_one_line(monkeypatch):
    import attncli.core.tokenize as tk

    class PanicException(BaseException):
        pass

    def panic(*a, **k):
        raise PanicException("regex too big")

    monkeypatch.setattr(tk, "_pre_tokenizer", lambda spec: type("P", (), {"pre_tokenize_str": panic})())
    ran = cli("run", "a b", "--no-plot")
    assert ran.code == 2 and "panicked" in one_error_line(ran.stderr)


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: np.save(p / "W.npy", np.ones((2, 2))) or p / "W.npy", "single .npy array"),
        (lambda p: [(p / "r.npz").write_bytes(os.urandom(300)), p / "r.npz"][1], "not a valid .npz"),
        (lambda p: np.savez(p / "z.npz", Wq=np.ones((1, 0, 8)), Wk=np.ones(1), Wv=np.ones(1)) or p / "z.npz", "0"),
        (lambda p: np.savez(p / "c.npz", Wq=np.ones((1, 8)) * 1j, Wk=np.ones(1), Wv=np.ones(1)) or p / "c.npz", "real"),
    ],
)
def test_weights_messages(tmp_path, make, fragment):
    ran = cli("run", "a b", "--no-plot", "--weights", str(make(tmp_path)))
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("--temperature", "1e-310", "--norm", "relu"), "A′"),
        (("--vmin", "nan"), "--vmin"),
        (("--precision", "-1"), "precision"),
    ],
)
def test_option_messages(args, fragment):
    ran = cli("run", "a b c", *args)
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)


def test_huge_values_make_an_error_naming_the_stage(tmp_path):
    np.savez(tmp_path / "w.npz", Wq=np.full((2, 8), 1e300), Wk=np.full((2, 8), 1e300), Wv=np.ones((2, 8)))
    ran = cli("run", "a b c", "--no-plot", "--json", "--weights", str(tmp_path / "w.npz"))
    assert ran.code == 2 and "infinite values after" in one_error_line(ran.stderr) and ran.stdout == ""


def test_deeply_nested_config(tmp_path):
    write_bert(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    ran = cli("model", str(tmp_path / "m"), "a", "--no-plot")
    assert ran.code == 2 and one_error_line(ran.stderr)


def test_non_utf8_argument_and_bom_and_utf16():
    exe = str(Path(sys.executable).with_name("attncli"))
    proc = subprocess.run([exe, "tokens", b"caf\xe9", "--json"], capture_output=True)
    assert proc.returncode == 2 and "not valid utf-8" in one_error_line(proc.stderr.decode())
    proc = subprocess.run([exe, "tokens", b"caf\xe9", "--json", "--encoding", "latin-1"], capture_output=True)
    assert json.loads(proc.stdout)["tokens"] == ["caf\u00e9"]
    ran = cli("tokens", "--json", input="\ufeffhello there\n".encode())
    assert json.loads(ran.stdout)["tokens"] == ["hello", "there"]
    ran = cli("tokens", "--json", "--encoding", "utf-16", input="one\ntwo words\n".encode("utf-16"))
    assert [json.loads(x)["n"] for x in ran.stdout.splitlines()] == [1, 2]


def test_runs_into_one_folder_take_turns(tmp_path):
    """A second run into a folder another run is writing to waits for it (one line on
    stderr), so the folder never holds a mix of two runs' figures; no lock file is left."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / "shared"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run, holding the folder
    exe = Path(sys.executable).with_name("attncli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attncli"]
    child = subprocess.Popen(
        cmd + ["run", "a b c", "-q", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(1.5)
    assert child.poll() is None and not list(out.glob("*.png"))  # still waiting, nothing written
    os.close(fd)  # the other run ends
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0 and b"waiting: another attncli run" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["attncli-manifest.json", "head_1.png"]
