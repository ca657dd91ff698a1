"""Streamed outputs say what the whole-document writers said: the same JSON values, the
same npz bytes, written piece by piece."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from conftest import cli
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from attncli.core.pipeline import run
from attncli.core.settings import Settings
from attncli.core.stats import head_stats
from attncli.export import arrays, dumps, nested, save_npz, to_json
from attncli.export_stream import write_json

SENTENCE = "The cat sat on the mat ."


def old_json(obj):
    """The plain version: every matrix as nested lists of Python floats, one json.dumps."""

    def lists(x):
        if isinstance(x, dict):
            return {k: lists(v) for k, v in x.items()}
        if isinstance(x, list):
            return [lists(v) for v in x]
        return nested(x) if isinstance(x, np.ndarray) else x

    return json.dumps(lists(obj), ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("float64", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_streamed_json_has_the_values_of_the_whole_document(float64, causal):
    result = run(SENTENCE, Settings(heads=3, causal=causal, float64=float64, positions="sinusoidal"))
    obj = to_json(result, ["a.png"], stats=head_stats(result), mean_heads=True)
    assert json.loads(dumps(obj)) == json.loads(old_json(obj))
    if float64:  # float64 is written as json writes it: the very same text
        assert dumps(obj) == old_json(obj)


def test_streamed_json_comes_in_blocks_of_rows():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((700, 700)).astype(np.float32)
    M[3, 4], M[5, 6], M[7, 8] = -np.inf, np.nan, 2.0
    pieces: list[str] = []
    write_json({"M": M, "tag": "x"}, pieces.append)
    assert json.loads("".join(pieces)) == json.loads(old_json({"M": M, "tag": "x"}))
    assert max(len(p) for p in pieces) < 0.2 * len("".join(pieces))  # never the whole text at once


def test_threads_write_the_bytes_of_one_thread_in_order(monkeypatch):
    """The document's float32 blocks go through one pipeline across matrices, a few blocks
    ahead on the threads: the text is byte for byte the one-thread text, in order."""
    rng = np.random.default_rng(3)
    obj = {
        "layers": [
            {"layer": k, "A": rng.standard_normal((300, 301)).astype(np.float32), "tag": f"<{k}>"} for k in range(5)
        ],
        "stack": rng.random((3, 200, 330), dtype=np.float32),
        "small": rng.random((4, 4), dtype=np.float32),
        "f64": rng.standard_normal((5, 7)),
    }
    texts = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr("attncli.core.blas.idle_cores", lambda cores=cores: cores)
        pieces: list[str] = []
        write_json(obj, pieces.append)
        texts[cores] = "".join(pieces)
    assert texts[2] == texts[1] and texts[3] == texts[1]
    assert json.loads(texts[1]) == json.loads(old_json(obj))


def test_json_on_stdout_is_one_line_equal_to_dumps():
    ran = cli("run", SENTENCE, "-H", "2", "--json", "--no-plot", "--mean-heads")
    assert ran.code == 0
    assert ran.stdout.count("\n") == 1
    obj = json.loads(ran.stdout)
    assert np.allclose(np.array(obj["heads"][0]["A_prime"]).sum(axis=0), 1, atol=1e-6)  # float32: to 1e-6


def old_npz(path, data):
    """The plain version: each member built in a BytesIO, then written whole."""
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for name, array in data.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def test_npz_streamed_has_the_bytes_of_the_buffered_writer_and_loads_without_pickle(tmp_path):
    result = run(SENTENCE, Settings(heads=4, positions="sinusoidal"))
    data = arrays(result, mean_heads=True)
    save_npz(tmp_path / "a.npz", data)
    save_npz(tmp_path / "b.npz", data)
    old_npz(tmp_path / "old.npz", data)
    a = (tmp_path / "a.npz").read_bytes()
    assert a == (tmp_path / "b.npz").read_bytes() == (tmp_path / "old.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(data)
        for k, v in data.items():
            assert np.array_equal(z[k], v)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]  # atomic: no temp left


def test_float64_option_keeps_float64_and_float32_is_the_default(tmp_path):
    assert cli("run", SENTENCE, "--no-plot", "--npz", "f32.npz").code == 0
    assert cli("run", SENTENCE, "--no-plot", "--npz", "f64.npz", "--float64").code == 0
    with np.load("f32.npz") as a, np.load("f64.npz") as b:
        assert a["A_prime"].dtype == np.float32 and b["A_prime"].dtype == np.float64
        assert np.allclose(a["A_prime"], b["A_prime"], atol=1e-6)
        assert np.allclose(b["A_prime"].sum(axis=1), 1, atol=1e-12)


def test_scores_are_dropped_only_when_no_view_reads_them():
    lean = run(SENTENCE, Settings(heads=2, keep_scores=False))
    full = run(SENTENCE, Settings(heads=2))
    assert lean.A is None and np.array_equal(lean.A_prime, full.A_prime)
    assert head_stats(lean) == head_stats(full)


def float32_cases():
    """float32 blocks of every kind: A'-like, scores of every magnitude, every bit pattern
    (NaN, ±inf, subnormals), whole numbers, and the edges of the notations and of rounding."""
    rng = np.random.default_rng(17)
    yield rng.random((64, 256), dtype=np.float32)
    yield (rng.standard_normal((40, 37)) * 10.0 ** rng.integers(-14, 14, (40, 37))).astype(np.float32)
    yield rng.integers(0, 2**32, (50, 41), dtype=np.uint64).astype(np.uint32).view(np.float32)
    yield np.round(rng.standard_normal((30, 33)) * 1000, 2).astype(np.float32)
    yield (rng.integers(-20, 20, (30, 31)) * 2.0 ** rng.integers(-40, 40, (30, 31))).astype(np.float32)
    powers = np.array([10.0**k for k in range(-45, 39)], np.float32)
    yield np.stack([np.nextafter(powers, np.float32(0)), powers, np.nextafter(powers, np.float32(np.inf))])
    yield np.array(
        [
            [0.0, -0.0, 1.0, -1.0, 1e-4, 9.99999e-5, 1e9, 999999999, 1e8, 123456789, 0.5, 2**-13, 3.4e38, 1e-45]
            + [np.inf, -np.inf, np.nan, 16777216, 0.1, 1e-5, 99999.99, 1.5e-5]
        ],
        np.float32,
    )


def percent_rows(block):
    """The reference: one `"%.9g" % x` per number, ±inf and NaN as null, whole numbers
    given json's ".0" (the writer before float32_text)."""
    import re

    row = "[" + ", ".join(["%.9g"] * block.shape[1]) + "]"
    text = ", ".join([row % tuple(r) for r in block.astype(np.float64).tolist()])
    text = re.sub(r"-?inf|nan", "null", text)
    return re.sub(r"(?<![\w.+-])(-?\d+)(?=[,\]])", r"\1.0", text)


@pytest.mark.parametrize("M", list(float32_cases()), ids=lambda M: f"{M.shape}")
def test_float32_text_is_the_percent_formatting_byte_for_byte(M):
    from attncli.export_stream import float32_text

    with np.errstate(invalid="ignore"):
        assert float32_text(M) == percent_rows(M)
        assert float32_text(M[:1, :1]) == percent_rows(M[:1, :1])


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    )
)
def test_float32_text_matches_percent_for_any_float32(M):
    """Any float32 matrix, every exponent group and edge hypothesis finds, byte for byte."""
    from attncli.export_stream import float32_text

    with np.errstate(invalid="ignore"):
        assert float32_text(M) == percent_rows(M)


def test_npz_writes_any_layout_with_write_array_bytes(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.random((5, 6), dtype=np.float32)
    data = {
        "c": base,
        "f": np.asfortranarray(base),
        "strided": base[::2, ::3],
        "tokens": np.array(["a", "bé", ""]),
        "empty": np.zeros((0, 4)),
        "scalar": np.float64(2.5),
        "ints": np.arange(7),
    }
    save_npz(tmp_path / "a.npz", data)
    old_npz(tmp_path / "old.npz", data)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "old.npz").read_bytes()


def test_json_safe_still_escapes_what_a_terminal_acts_on():
    from attncli.labels import json_safe

    plain = json.dumps({"t": "ab", "x": [1.5, 2]})
    assert json_safe(plain) is plain  # ASCII JSON: nothing to escape, not scanned
    assert json_safe('{"t": "a\x7fb"}') == '{"t": "a\\u007fb"}'
    assert json_safe('{"t": "a\u202eb\x85"}') == '{"t": "a\\u202eb\\u0085"}'


def test_float32_rows_are_written_as_before_whole_numbers_nulls_and_all():
    """Byte for byte what "%.9g" per number gave, with json's "1.0" for whole numbers and
    null for ±inf/NaN (the row formatter fills templates instead of rewriting the text)."""
    import re

    def plain(M):  # the earlier writer: format, then fix the text with regular expressions
        rows = ", ".join("[" + ", ".join("%.9g" % x for x in row) + "]" for row in M.astype(np.float64).tolist())
        rows = re.sub(r"-?inf|nan", "null", rows)
        return "[" + re.sub(r"(?<![\w.+-])(-?\d+)(?=[,\]])", r"\1.0", rows) + "]"

    rng = np.random.default_rng(1)
    special = np.array([0.0, -0.0, 1.0, -3.0, 2.0**20, 999999936.0, 1e9, 1e10, np.inf, -np.inf, np.nan, 0.5, 1e-5])
    for rows, cols in ((40, 3), (40, 70), (100, 13), (100, 70)):  # small matrices: one template; larger: by row
        M = rng.standard_normal((rows, cols)) * 10.0 ** rng.integers(-6, 12, size=(rows, 1))
        pick = rng.random(M.shape) < 0.3
        M[pick] = rng.choice(special, size=pick.sum())
        M = M.astype(np.float32)
        for X in (M, np.triu(M), np.where(np.triu(np.ones_like(M, bool)), M, -np.inf)):
            pieces: list[str] = []
            write_json({"M": X}, pieces.append)
            assert "".join(pieces) == '{"M": ' + plain(X) + "}"
