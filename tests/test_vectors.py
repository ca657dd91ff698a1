"""Bring your own data: vectors in every format, tokenizer.json files, weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from helpers import (
    table,
    train_tokenizer,
    write_bin,
    write_embedding_checkpoint,
    write_glove,
    write_npy,
    write_npz,
)

from attncli.core import vectors as vec
from attncli.core.embed import token_vector

SENTENCE = "The cat sat on the mat ."
TOKENS = ["The", "cat", "sat", "on", "the", "mat", "."]


def columns_of_I(*args) -> np.ndarray:
    ran = cli("run", SENTENCE, "--npz", "m.npz", "--no-plot", *args)
    assert ran.code == 0, ran.stderr
    with np.load("m.npz", allow_pickle=False) as z:
        return z["I"]


@pytest.mark.parametrize("fmt", ["glove", "vec", "bin", "npy", "npz"])
def test_each_format_loads_and_columns_of_I_equal_the_file(tmp_path, fmt):
    t = table()
    path = {
        "glove": lambda: write_glove(tmp_path / "g.txt", t),
        "vec": lambda: write_glove(tmp_path / "w.vec", t, header=True),
        "bin": lambda: write_bin(tmp_path / "w.bin", t),
        "npy": lambda: write_npy(tmp_path / "npy", t),
        "npz": lambda: write_npz(tmp_path / "v.npz", t),
    }[fmt]()
    I = columns_of_I("-e", str(path))
    assert I.shape == (5, 7)
    for j, tok in enumerate(TOKENS):
        assert np.array_equal(I[:, j], t[tok]), tok  # exact: "The" is in the file as itself


def test_lookup_falls_back_to_lower_case(tmp_path):
    t = table()
    del t["The"]
    I = columns_of_I("-e", str(write_glove(tmp_path / "g.txt", t)))
    assert np.array_equal(I[:, 0], t["the"])


def test_oov_random_zero_error(tmp_path):
    t = table()
    del t["mat"], t["The"]
    path = str(write_glove(tmp_path / "g.txt", t))
    ran = cli("run", SENTENCE, "-e", path, "--no-plot", "--npz", "r.npz", "--seed", "4")
    assert ran.code == 0
    assert ran.stderr.count("warning:") == 1 and "'mat'" in ran.stderr
    with np.load("r.npz") as z:
        assert np.array_equal(z["I"][:, 5], token_vector("mat", 5, 4).astype(np.float32))  # seeded like random mode
    cli("run", SENTENCE, "-e", path, "--no-plot", "--npz", "z.npz", "--oov", "zero")
    with np.load("z.npz") as z:
        assert not z["I"][:, 5].any()
    ran = cli("run", SENTENCE, "-e", path, "--oov", "error")
    assert ran.code == 2 and "'mat'" in one_error_line(ran.stderr)
    assert not Path("attn_out").exists()


def test_tokenizer_json_file_and_folder_with_special_tokens(tmp_path):
    path = train_tokenizer(tmp_path / "tokenizer.json")
    for spec in (path, tmp_path):
        obj = json.loads(cli("tokens", SENTENCE, "-t", str(spec), "--json").stdout)
        assert obj["tokens"][0] == "[CLS]" and obj["tokens"][-1] == "[SEP]"
        assert obj["special"][0] and not obj["special"][1]
        assert all(isinstance(i, int) for i in obj["ids"])
    obj = json.loads(cli("run", SENTENCE, "-t", str(path), "--no-special", "--json", "--no-plot").stdout)
    assert "[CLS]" not in obj["tokens"] and obj["n"] == 7


def test_padding_and_truncation_in_the_file_do_not_change_tokens(tmp_path):
    from tokenizers import Tokenizer

    path = train_tokenizer(tmp_path / "tokenizer.json")
    tok = Tokenizer.from_file(str(path))
    tok.enable_padding(length=32)
    tok.enable_truncation(max_length=4)
    padded = tmp_path / "padded.json"
    tok.save(str(padded))
    a = json.loads(cli("tokens", SENTENCE, "-t", str(path), "--json").stdout)
    b = json.loads(cli("tokens", SENTENCE, "-t", str(padded), "--json").stdout)
    assert a["tokens"] == b["tokens"] and "[PAD]" not in b["tokens"]


def test_safetensors_file_and_model_folder_look_up_by_ids(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    train_tokenizer(model / "tokenizer.json")
    t = write_embedding_checkpoint(model, vocab=200, r=6)
    ids = json.loads(cli("tokens", SENTENCE, "-t", str(model), "--json").stdout)["ids"]
    I = columns_of_I("-e", str(model))  # the folder brings its tokenizer
    assert I.shape == (6, len(ids))
    assert np.array_equal(I, t[ids].T.astype(np.float64))
    I2 = columns_of_I("-e", str(model / "model.safetensors"), "-t", str(model / "tokenizer.json"))
    assert np.array_equal(I, I2)


def test_safetensors_needs_ids(tmp_path):
    write_embedding_checkpoint(tmp_path, vocab=50, r=4)
    (tmp_path / "model.safetensors").rename(tmp_path / "alone.safetensors")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (tmp_path / "alone.safetensors").rename(other / "alone.safetensors")
    ran = cli("run", SENTENCE, "-e", str(other / "alone.safetensors"), "-t", "whitespace")
    assert ran.code == 2 and "tokenizer" in one_error_line(ran.stderr)


def test_a_folder_of_npy_vectors_is_pointed_at_its_npy_file(tmp_path):
    write_npy(tmp_path / "npy", table())
    ran = cli("run", SENTENCE, "-e", str(tmp_path / "npy"))
    assert ran.code == 2 and "give the .npy file" in one_error_line(ran.stderr)
    assert cli("run", SENTENCE, "-e", str(tmp_path / "npy" / "vectors.npy"), "--no-plot").code == 0


def test_weights_give_A_prime_equal_to_an_independent_reference(tmp_path):
    t = table()
    rng = np.random.default_rng(11)
    Wq, Wk, Wv = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 4, 5))
    Wo = rng.standard_normal((5, 8))
    np.savez(tmp_path / "w.npz", Wq=Wq, Wk=Wk, Wv=Wv, Wo=Wo)
    obj = json.loads(
        cli(
            "run",
            SENTENCE,
            "-e",
            str(write_glove(tmp_path / "g.txt", t)),
            "--weights",
            str(tmp_path / "w.npz"),
            "--json",
            "--no-plot",
        ).stdout
    )
    assert obj["dims"] == {"r": 5, "q": 3, "v": 4, "heads": 2}
    X = np.stack([t[w] for w in TOKENS])  # n×r, rows are tokens (the other layout, on purpose)
    outs = []
    for h in range(2):
        Qr, Kr, Vr = X @ Wq[h].T, X @ Wk[h].T, X @ Wv[h].T  # n×q
        S = Qr @ Kr.T / np.sqrt(3)  # [query, key]
        P = np.exp(S - S.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        assert np.allclose(np.array(obj["heads"][h]["A_prime"]), P.T, atol=1e-12)  # notes' layout: transpose
        outs.append(P @ Vr)  # n×v
    assert np.allclose(np.array(obj["O"]), (np.concatenate(outs, axis=1) @ Wo.T).T, atol=1e-12)


def test_single_head_weights_in_q_by_r_form(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "w.npz",
        Wq=rng.standard_normal((2, 8)),
        Wk=rng.standard_normal((2, 8)),
        Wv=rng.standard_normal((3, 8)),
    )
    obj = json.loads(cli("run", SENTENCE, "--weights", str(tmp_path / "w.npz"), "--json", "--no-plot").stdout)
    assert obj["dims"] == {"r": 8, "q": 2, "v": 3, "heads": 1}


def test_sample_inputs_work():
    root = Path(__file__).resolve().parents[1] / "sample_inputs"
    for spec in ("glove.txt", "vectors.vec", "vectors.bin", "npy/vectors.npy", "vectors.npz"):
        ran = cli(
            "run", SENTENCE, "-e", str(root / spec), "--weights", str(root / "weights.npz"), "--no-plot", "--json"
        )
        assert ran.code == 0, (spec, ran.stderr)
    assert cli("run", SENTENCE, "-t", str(root / "tokenizer.json"), "--no-plot").code == 0


def test_a_batch_reads_a_text_file_once(tmp_path, monkeypatch):
    path = write_glove(tmp_path / "g.txt", table())
    calls = []
    real = vec.scan_text
    monkeypatch.setattr(vec, "scan_text", lambda *a, **k: calls.append(1) or real(*a, **k))
    ran = cli("run", "--no-plot", "--json", "-e", str(path), input="the cat\nthe dog\na mat .\n")
    assert ran.code == 0 and len(ran.stdout.splitlines()) == 3
    assert len(calls) == 1


# ---- bad input: one line, exit 2, nothing written ----


def bad(tmp_path, name: str, content: bytes | str) -> str:
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(p)


def _object_npz(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, vocab=np.array(["a", None], dtype=object), vectors=np.zeros((2, 3)))
    return str(p)


def _object_npy(tmp_path):
    d = tmp_path / "objnpy"
    d.mkdir()
    np.save(d / "v.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    (d / "vocab.txt").write_text("a\n")
    return str(d / "v.npy")


def _truncated_bin(tmp_path):
    p = write_bin(tmp_path / "t.bin", table())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 30])
    return str(p)


def _nan_npz(tmp_path):
    p = tmp_path / "nan.npz"
    np.savez(p, vocab=np.array(["the", "cat"]), vectors=np.array([[1.0, np.nan], [0.0, 1.0]]))
    return str(p)


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d: str(d / "missing.txt"), ["missing.txt", "no such file"]),
        (lambda d: bad(d, "empty.txt", ""), ["empty.txt", "empty"]),
        (lambda d: bad(d, "ragged.txt", "the 1 2 3\ncat 1 2\n"), ["ragged.txt line 2", "expected 3 numbers, found 2"]),
        (lambda d: bad(d, "word.txt", "the 1 2 3\ncat 1 x 3\n"), ["word.txt line 2", "'x' is not a number"]),
        (lambda d: bad(d, "nan.txt", "the 1 nan 3\n"), ["nan.txt line 1", "NaN or Inf"]),
        (lambda d: bad(d, "inf.txt", "x 1 1 1\nthe 1 inf 3\n"), ["inf.txt line 2", "NaN or Inf"]),
        (lambda d: bad(d, "hdr.vec", "5 3\nthe 1 2 3\ncat 1 2 3\n"), ["hdr.vec line 1", "says 5 words", "2 rows"]),
        (lambda d: bad(d, "dim.vec", "2 4\nthe 1 2 3\ncat 1 2 3\n"), ["dim.vec line 2", "expected 4 numbers"]),
        (_object_npz, ["obj.npz", "Python objects"]),
        (_object_npy, ["v.npy", "Python objects"]),
        (_truncated_bin, ["t.bin", "truncated"]),
        (_nan_npz, ["nan.npz", "NaN or Inf"]),
        (lambda d: bad(d, "junk.npz", b"not a zip"), ["junk.npz"]),
    ],
)
def test_bad_vectors(tmp_path, make, fragments):
    ran = cli("run", SENTENCE, "-e", make(tmp_path))
    line = one_error_line(ran.stderr)
    assert ran.code == 2, ran
    for f in fragments:
        assert f in line, (f, line)
    assert not Path("attn_out").exists() and ran.stdout == ""


def test_invalid_tokenizer_json(tmp_path):
    p = bad(tmp_path, "tokenizer.json", '{"model": "nope"}')
    ran = cli("run", SENTENCE, "-t", p)
    assert ran.code == 2 and "not a valid tokenizer.json" in one_error_line(ran.stderr)
    assert not Path("attn_out").exists()


def _weights(tmp_path, **arrays):
    p = tmp_path / "w.npz"
    np.savez(p, **arrays)
    return str(p)


@pytest.mark.parametrize(
    "arrays, extra, fragments",
    [
        (dict(Wq=np.zeros((2, 3, 8)), Wk=np.zeros((2, 3, 8))), [], ["missing array Wv"]),
        (dict(Wq=np.zeros((3,)), Wk=np.zeros((3,)), Wv=np.zeros((3,))), [], ["Wq has shape (3,)"]),
        (dict(Wq=np.zeros((2, 3, 8)), Wk=np.zeros((2, 4, 8)), Wv=np.zeros((2, 3, 8))), [], ["Wk has shape (2, 4, 8)"]),
        (dict(Wq=np.zeros((2, 3, 7)), Wk=np.zeros((2, 3, 7)), Wv=np.zeros((2, 3, 7))), [], ["r = 7", "r = 8"]),
        (
            dict(Wq=np.zeros((2, 3, 8)), Wk=np.zeros((2, 3, 8)), Wv=np.zeros((2, 3, 8))),
            ["-H", "3"],
            ["--heads 3", "holds 2", "(2, 3, 8)"],
        ),
        (
            dict(Wq=np.zeros((2, 3, 8)), Wk=np.zeros((2, 3, 8)), Wv=np.zeros((2, 3, 8))),
            ["--q-dim", "4"],
            ["--q-dim 4", "holds 3"],
        ),
        (
            dict(Wq=np.zeros((2, 3, 8)), Wk=np.zeros((2, 3, 8)), Wv=np.zeros((2, 3, 8)), Wo=np.zeros((8, 5))),
            [],
            ["Wo has shape (8, 5)", "(8, 6)"],
        ),
        (dict(Wq=np.full((3, 8), np.inf), Wk=np.zeros((3, 8)), Wv=np.zeros((3, 8))), [], ["array Wq", "NaN or Inf"]),
    ],
)
def test_bad_weights(tmp_path, arrays, extra, fragments):
    ran = cli("run", SENTENCE, "--weights", _weights(tmp_path, **arrays), *extra)
    line = one_error_line(ran.stderr)
    assert ran.code == 2
    for f in fragments:
        assert f in line, (f, line)
    assert not Path("attn_out").exists()


def test_object_weights_and_missing_weights(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, Wq=np.array([None], dtype=object), Wk=np.zeros((3, 8)), Wv=np.zeros((3, 8)))
    ran = cli("run", SENTENCE, "--weights", str(p))
    assert ran.code == 2 and "Python objects" in one_error_line(ran.stderr)
    ran = cli("run", SENTENCE, "--weights", str(tmp_path / "nope.npz"))
    assert ran.code == 2 and "nope.npz" in one_error_line(ran.stderr)


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1 << 20])
def test_streaming_finds_the_same_rows_at_any_chunk_size(tmp_path, monkeypatch, header, chunk):
    t = table(r=4, words=[f"w{k}" for k in range(40)] + ["cat", "The", "."])
    path = write_glove(tmp_path / "g.vec", t, header=header)
    monkeypatch.setattr(vec, "CHUNK", chunk)
    found, r = vec.scan_text(path, ["w0", "w39", "cat", ".", "w7", "absent"])
    assert r == 4 and set(found) == {"w0", "w39", "cat", ".", "w7"}
    for w, row in found.items():
        assert np.array_equal(row, t[w])


@pytest.mark.parametrize("chunk", [3, 50, 1 << 20])
def test_error_line_numbers_do_not_depend_on_chunks(tmp_path, monkeypatch, chunk):
    rows = [f"w{k} 1 2 3" for k in range(30)]
    rows[17] = "w17 1 2"
    path = tmp_path / "g.txt"
    path.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(vec, "CHUNK", chunk)
    with pytest.raises(vec.AttnError, match="line 18: expected 3 numbers, found 2"):
        vec.scan_text(path, ["w17"])


def test_a_vectors_file_in_another_encoding_is_named_and_encoding_reads_it(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("the 1 2 3\ncaf\u00e9 4 5 6\n".encode("latin-1"))
    ran = cli("run", "the caf\u00e9", "-e", str(path))
    assert ran.code == 2 and "latin.txt line 2" in one_error_line(ran.stderr) and "--encoding" in ran.stderr
    assert not Path("attn_out").exists()
    ran = cli("run", "the caf\u00e9", "-e", str(path), "--encoding", "latin-1", "--npz", "m.npz", "--no-plot")
    assert ran.code == 0 and "warning" not in ran.stderr
    with np.load("m.npz") as z:
        assert z["I"][:, 1].tolist() == [4.0, 5.0, 6.0]
