"""Fuzzing every reader and every command against the contract (issue 13):

- the exit code is 0, 1, 2 or 130;
- stderr is empty or ``error:`` lines (one, or one per bad line of a stdin batch) and
  ``warning:`` lines, with no control character and no traceback;
- no ``.part`` file is left and no file appears outside the output folder;
- (subprocess cases) memory stays under RLIMIT_AS = 4 GiB.

Most cases run in-process through ``cli()`` (fast); the readers that allocate by sizes
read from the file (safetensors, npz, config.json) also run as subprocesses under the
memory limit. ``ATTNCLI_FUZZ=long`` runs thousands of cases (tests/README.md)."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from helpers import table, write_bert, write_bin, write_glove, write_npz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LONG = os.environ.get("ATTNCLI_FUZZ") == "long"
FAST = settings(
    max_examples=400 if LONG else 6,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=list(HealthCheck),
)
SLOW = settings(FAST, max_examples=150 if LONG else 3)
CONTROL = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n"}
EXE = Path(sys.executable).with_name("attncli")
GiB = 1 << 30


def check(code: int, stderr: str, folder: Path, before: set[str], batch: bool = False) -> None:
    """The contract of every run."""
    assert code in (0, 1, 2, 130), (code, stderr)
    assert "Traceback" not in stderr, stderr
    assert not (CONTROL & set(stderr)), stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), stderr
    if code == 0:
        assert not errors, stderr
    elif not batch:
        assert len(errors) == 1, stderr
    else:
        assert errors, stderr
    after = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    assert not [p for p in after if p.endswith(".part")], after
    new = [p for p in after - before if not p.startswith("attn_out")]
    assert not new, new


def run_in(folder: Path, *args: str, input: bytes | None = None, batch: bool = False) -> None:
    """``attncli args`` in-process, in ``folder``, checked against the contract."""
    before = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    old = os.getcwd()
    os.chdir(folder)
    try:
        ran = cli(*args, input=input)
    finally:
        os.chdir(old)
    check(ran.code, ran.stderr, folder, before, batch)


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 * GiB, 4 * GiB))


def run_limited(folder: Path, *args: str) -> None:
    """``attncli args`` in a subprocess under RLIMIT_AS = 4 GiB."""
    before = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    proc = subprocess.run(
        [str(EXE), *args], cwd=folder, capture_output=True, preexec_fn=_limit, timeout=120, stdin=subprocess.DEVNULL
    )
    check(proc.returncode, proc.stderr.decode("utf-8", "replace"), folder, before)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Structured mutations of a valid file: overwrite, delete or duplicate a span."""
    out = bytearray(data)
    for kind, at, value in edits:
        if not out:
            break
        at %= len(out)
        if kind == 0:
            out[at] = value
        elif kind == 1:
            del out[at : at + value % 64 + 1]
        elif kind == 2:
            out[at:at] = out[at : at + value % 64 + 1] * (value % 4 + 1)
        else:
            out = out[:at]
    return bytes(out)


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6)


def valid(kind: str, folder: Path) -> Path:
    """A valid file of each reader's format, to mutate."""
    vectors = table(4)
    if kind == "txt":
        return write_glove(folder / "v.txt", vectors, header=True)
    if kind == "bin":
        return write_bin(folder / "v.bin", vectors)
    if kind == "npz":
        return write_npz(folder / "v.npz", vectors)
    if kind == "npy":
        np.save(folder / "v.npy", np.array(list(vectors.values())))
        (folder / "vocab.txt").write_text("\n".join(vectors) + "\n")
        return folder / "v.npy"
    if kind == "weights":
        rng = np.random.default_rng(0)
        W = {k: rng.normal(size=(2, 4, 8)) for k in ("Wq", "Wk", "Wv")}
        np.savez(folder / "w.npz", **W)
        return folder / "w.npz"
    from safetensors.numpy import save_file

    save_file({"embeddings.word_embeddings.weight": np.ones((20, 8), np.float32)}, str(folder / "e.safetensors"))
    return folder / "e.safetensors"


READER_ARGS = {
    "txt": ("-e",),
    "bin": ("-e",),
    "npz": ("-e",),
    "npy": ("-e",),
    "safetensors": ("-e",),
    "weights": ("--weights",),
}


@FAST
@given(kind=st.sampled_from(sorted(READER_ARGS)), edits=EDITS, raw=st.booleans(), noise=st.binary(max_size=600))
def test_readers_take_any_bytes(kind, edits, raw, noise):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = valid(kind, folder)
        path.write_bytes(noise if raw else mutate(path.read_bytes(), edits))
        run_in(folder, "run", "the cat sat", *READER_ARGS[kind], str(path), "--no-plot", "--json")


@SLOW
@given(kind=st.sampled_from(["safetensors", "weights", "npz"]), edits=EDITS)
def test_readers_that_allocate_stay_under_the_memory_limit(kind, edits):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = valid(kind, folder)
        path.write_bytes(mutate(path.read_bytes(), edits))
        run_limited(folder, "run", "the cat", *READER_ARGS[kind], str(path), "--no-plot", "--json")


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bert") / "m"
    write_bert(folder, vocab=60, r=8, H=2, L=1, inter=8)
    return folder


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(
    name=st.sampled_from(["config.json", "tokenizer.json", "model.safetensors"]),
    key=st.text(max_size=30),
    value=JSON_VALUES,
    edits=EDITS,
    structured=st.booleans(),
)
def test_model_folders_take_any_config_tokenizer_or_weights(bert, name, key, value, edits, structured):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        for f in bert.iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        target = folder / name
        if structured and name != "model.safetensors":
            data = json.loads(target.read_text())
            keys = list(data) + [key]
            data[keys[len(key) % len(keys)]] = value  # replace a real key, or add one
            target.write_text(json.dumps(data))
        else:
            target.write_bytes(mutate(target.read_bytes(), edits))
        run_in(Path(tmp), "model", "m", "the cat sat", "--no-plot", "--json")


@FAST
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_stdin_takes_any_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        run_in(Path(tmp), "run", "--json", "--no-plot", input=data, batch=True)


NUMBERS = st.sampled_from(
    ["0", "-1", "1", "2", "3", "7", "8", "1e300", "1e-310", "nan", "inf", "-inf", "x", "", "99999"]
)
OPTIONS = {
    "-H": NUMBERS,
    "-r": st.sampled_from(["1", "2", "4", "8", "16", "0", "-3", "x"]),
    "--q-dim": NUMBERS,
    "--v-dim": NUMBERS,
    "--temperature": NUMBERS,
    "--norm": st.sampled_from(["softmax", "relu", "sparsemax", "x", ""]),
    "--positions": st.sampled_from(["none", "sinusoidal", "x"]),
    "--seed": NUMBERS,
    "--max-tokens": NUMBERS,
    "--encoding": st.sampled_from(["utf-8", "latin-1", "utf-16", "rot13", "klingon"]),
    "--precision": NUMBERS,
    "--vmin": NUMBERS,
    "--vmax": NUMBERS,
    "--dpi": st.sampled_from(["10", "72", "0", "100000", "x"]),
    "--figsize": st.sampled_from(["4,3", "0,0", "nan,nan", "1e9,1", "x"]),
    "--font-size": NUMBERS,
    "--image-format": st.sampled_from(["png", "svg", "pdf", "gif"]),
    "--theme": st.sampled_from(["light", "dark", "x"]),
    "--cmap": st.sampled_from(["viridis", "RdBu_r", "nope"]),
    "--title": st.text(max_size=12),
    "--matrix": st.sampled_from(["A", "A_prime", "Q"]),
    "--oov": st.sampled_from(["random", "zero", "error", "x"]),
    "-o": st.sampled_from(["attn_out", "attn_out/sub", "attn_out/a\nb\x1b"]),
    "--npz": st.sampled_from(["attn_out/x.npz", "attn_out/head_1.png", "attn_out"]),
}
FLAGS = ["--causal", "--no-scale", "--values", "--preview", "--json", "-q", "--transpose", "--mean-heads"]
COMMAND_OPTIONS = {
    "run": list(OPTIONS),
    "explain": [
        *("-H", "-r", "--q-dim", "--v-dim", "--temperature", "--norm", "--seed", "--precision", "--query", "--head")
    ],
    "tokens": ["--encoding", "-t"],
    "model": ["--layer", "--head", "--max-tokens", "--dpi", "--image-format", "--vmin", "-o", "--npz"],
}
EXTRA = {
    "--query": NUMBERS,
    "--head": st.sampled_from(["1", "2", "0", "1-2", "2,1", "x", "9"]),
    "--layer": st.sampled_from(["1", "0", "1-1", "x", "5"]),
    "-t": st.sampled_from(["whitespace", "bert", "char", "nope", "."]),
}
TEXT = st.text(min_size=0, max_size=40) | st.sampled_from(["the cat sat on the mat .", "it costs $$ now $_$", "-"])


@st.composite
def command_line(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMAND_OPTIONS)))
    args = [command]
    if command == "model":
        args.append("MODEL")
    text = draw(TEXT)
    args.append(text if text else "x")
    for option in draw(st.lists(st.sampled_from(COMMAND_OPTIONS[command]), max_size=4, unique=True)):
        args += [option, draw((OPTIONS | EXTRA)[option])]
    if command in ("run", "explain"):
        args += draw(st.lists(st.sampled_from(FLAGS if command == "run" else ["--causal", "--json"]), max_size=3))
    if command in ("run", "model") and "-q" not in args and draw(st.integers(0, 4)):
        args.append("--no-plot")  # most cases skip drawing: figures are slow
    return args


@FAST
@given(args=command_line())
def test_every_command_takes_any_options(bert, args):
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(bert) if a == "MODEL" else a for a in args]
        run_in(Path(tmp), *args, input=b"the cat\n")


def test_truncated_safetensors_header_claims(tmp_path):
    """Headers that promise more than the file holds, by hand (the cases fuzzing found first)."""
    for header in (
        {"x": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 16]}},
        {"x": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}},
        {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**62]}},
    ):
        raw = json.dumps(header).encode()
        (tmp_path / "e.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(16))
        run_limited(tmp_path, "run", "a", "-e", "e.safetensors", "--no-plot")
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as zf:  # a member whose header claims 8 GB
        header = b"\x93NUMPY\x01\x00" + b"v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }"
        zf.writestr("Wq.npy", header.ljust(128, b" ")[:127] + b"\n")
    run_limited(tmp_path, "run", "a", "--weights", "w.npz", "--no-plot")
