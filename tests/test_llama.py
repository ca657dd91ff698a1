"""Llama-family decoders (llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text): every
layer's and head's A' against transformers (eager attention), plus an independent numpy
reference that runs without torch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from helpers import shard, write_bert
from llama_helpers import FAMILIES, hf_attention, hf_model, llama_tokenizer, save

from attncli.core.models import llama, load
from attncli.core.models.config import read_config
from attncli.errors import AttnError

HAVE_HF = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None
needs_hf = pytest.mark.skipif(not HAVE_HF, reason="transformers and torch are not installed")
IDS = [1, 5, 9, 17, 3, 44, 100, 7, 8, 12, 30, 31]  # 12 tokens: longer than every sliding window (3)


def ours(folder: Path, ids=IDS, dtype=np.float32, last=2) -> list[np.ndarray]:
    got: list[np.ndarray] = []
    llama.forward(load(folder), ids, dtype, last, lambda layer, A, P: got.append(P))
    return got


@needs_hf
@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_layer_and_head_matches_transformers(tmp_path, name):
    model = hf_model(name)
    got, want = ours(save(model, tmp_path / name)), hf_attention(model, IDS)
    assert len(got) == len(want) == 2
    for layer, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape == (4, len(IDS), len(IDS))
        assert np.abs(g - w).max() < 1e-4, f"layer {layer}"
        assert np.allclose(g.sum(axis=1), 1, atol=1e-5)  # each column of A' sums to 1


@needs_hf
@pytest.mark.parametrize("name,dtype", [("llama", "bfloat16"), ("gemma3_text", "bfloat16"), ("qwen2", "float16")])
def test_half_precision_checkpoints_match_transformers_on_the_same_rounded_weights(tmp_path, name, dtype):
    import torch

    model = hf_model(name)
    save(model, tmp_path / name, getattr(torch, dtype))  # .to() rounds the model in place
    fresh = hf_model(name)  # float32 rotation frequencies (the rounded model's are bf16 too)
    fresh.load_state_dict(model.float().state_dict())  # the rounded weights, computed in float32 as we do
    for g, w in zip(ours(tmp_path / name), hf_attention(fresh, IDS)):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
def test_sharded_checkpoint_gives_the_same_attention(tmp_path):
    model = hf_model("qwen3")
    one = ours(save(model, tmp_path / "a"))
    save(model, tmp_path / "b")
    shard(tmp_path / "b", 3)
    assert all(np.array_equal(x, y) for x, y in zip(one, ours(tmp_path / "b")))


@needs_hf
def test_sliding_window_and_local_layers_hide_far_keys(tmp_path):
    """mistral: every layer; gemma2/gemma3: only the sliding layers (layer 1 here is global)."""
    for name, sliding in (("mistral", [True, True]), ("gemma2", [True, False]), ("gemma3_text", [True, False])):
        got = ours(save(hf_model(name), tmp_path / name))
        i, j = np.indices((len(IDS), len(IDS)))
        far = j - i >= 3  # key i at least one window (3) before query j
        for layer, A_prime in enumerate(got):
            assert (np.abs(A_prime[:, far]).max() == 0) == sliding[layer], (name, layer)


# ---------------------------------------------------------------- independent reference


def reference(t: dict, cfg: dict, ids: list[int]) -> list[np.ndarray]:
    """Plain loops over tokens and heads, float64, Llama/Mistral/Gemma-2 rules written out
    again from the papers: RMSNorm, RoPE on (k, k + q/2) pairs, causal (+ window) softmax."""
    r, H, G, d = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    gemma, eps, n = cfg["model_type"] == "gemma2", cfg["rms_norm_eps"], len(ids)
    cap, window = cfg.get("attn_logit_softcapping"), cfg.get("sliding_window") or n + 1

    def norm(v, w):
        return v / np.sqrt((v * v).mean() + eps) * ((1 + w) if gemma else w)

    def rope(v, p):
        out = v.copy()
        for k in range(d // 2):
            a = p * cfg["rope_theta"] ** (-2 * k / d)
            out[k] = v[k] * np.cos(a) - v[k + d // 2] * np.sin(a)
            out[k + d // 2] = v[k + d // 2] * np.cos(a) + v[k] * np.sin(a)
        return out

    x = [t["model.embed_tokens.weight"][i] * (np.sqrt(r) if gemma else 1.0) for i in ids]
    maps = []
    for l in range(cfg["num_hidden_layers"]):
        w = {k.split(f"layers.{l}.")[1]: v for k, v in t.items() if f"layers.{l}." in k}
        h = [norm(v, w["input_layernorm.weight"]) for v in x]
        q = [
            rope(w["self_attn.q_proj.weight"][hh * d : (hh + 1) * d] @ v, p) for p, v in enumerate(h) for hh in range(H)
        ]
        k = [rope(w["self_attn.k_proj.weight"][g * d : (g + 1) * d] @ v, p) for p, v in enumerate(h) for g in range(G)]
        vv = [w["self_attn.v_proj.weight"][g * d : (g + 1) * d] @ v for v in h for g in range(G)]
        P = np.zeros((H, n, n))
        out = [np.zeros(H * d) for _ in range(n)]
        for hh in range(H):
            g = hh // (H // G)
            for j in range(n):
                s = np.full(n, -np.inf)
                for i in range(max(0, j - window + 1), j + 1):
                    s[i] = q[j * H + hh] @ k[i * G + g] / np.sqrt(cfg.get("query_pre_attn_scalar", d))
                    s[i] = cap * np.tanh(s[i] / cap) if cap else s[i]
                e = np.exp(s - s.max())
                P[hh, :, j] = e / e.sum()
                out[j][hh * d : (hh + 1) * d] = sum(P[hh, i, j] * vv[i * G + g] for i in range(n))
        maps.append(P)
        o = [w["self_attn.o_proj.weight"] @ v for v in out]
        x = [a + (norm(b, w["post_attention_layernorm.weight"]) if gemma else b) for a, b in zip(x, o)]
        h = [norm(v, w["pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"]) for v in x]
        act = (
            (lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))))
            if gemma
            else (lambda z: z / (1 + np.exp(-z)))
        )
        f = [
            w["mlp.down_proj.weight"] @ (act(w["mlp.gate_proj.weight"] @ v) * (w["mlp.up_proj.weight"] @ v)) for v in h
        ]
        x = [a + (norm(b, w["post_feedforward_layernorm.weight"]) if gemma else b) for a, b in zip(x, f)]
    return maps


def write_numpy_checkpoint(folder: Path, cfg: dict, seed: int = 0) -> dict:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    r, H, G, d, inter = (
        cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size")
    )
    norm0 = 0.0 if cfg["model_type"] == "gemma2" else 1.0
    t = {"model.embed_tokens.weight": rng.standard_normal((cfg["vocab_size"], r)), "model.norm.weight": np.ones(r)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes = {
            "self_attn.q_proj": (H * d, r),
            "self_attn.k_proj": (G * d, r),
            "self_attn.v_proj": (G * d, r),
            "self_attn.o_proj": (r, H * d),
            "mlp.gate_proj": (inter, r),
            "mlp.up_proj": (inter, r),
            "mlp.down_proj": (r, inter),
        }
        t.update({p + k + ".weight": rng.standard_normal(s) * 0.3 for k, s in shapes.items()})
        norms = ["input_layernorm", "post_attention_layernorm"]
        norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"] if norm0 == 0 else []
        t.update({p + k + ".weight": norm0 + 0.2 * rng.standard_normal(r) for k in norms})
    t = {k: v.astype(np.float32) for k, v in t.items()}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg))
    return {k: v.astype(np.float64) for k, v in t.items()}


# a tiny Llama-family model written with numpy (write_numpy_checkpoint); tests change what they need
TINY = dict(
    hidden_size=16,
    num_attention_heads=4,
    head_dim=6,
    intermediate_size=20,
    num_hidden_layers=2,
    vocab_size=40,
    rms_norm_eps=1e-6,
    rope_theta=100.0,
    max_position_embeddings=32,
)


NUMPY_CONFIGS = {
    "llama_gqa": dict(model_type="llama", num_key_value_heads=2),
    "mistral_window": dict(model_type="mistral", num_key_value_heads=1, sliding_window=4),
    "gemma2_capped": dict(
        model_type="gemma2",
        num_key_value_heads=4,
        sliding_window=None,
        attn_logit_softcapping=2.0,
        query_pre_attn_scalar=10,
        hidden_activation="gelu_pytorch_tanh",
    ),
}


@pytest.mark.parametrize("name", list(NUMPY_CONFIGS))
@pytest.mark.parametrize("float64,tol", [(False, 1e-4), (True, 1e-10)])
def test_attention_matches_an_independent_numpy_reference(tmp_path, name, float64, tol):
    cfg = {**TINY, **NUMPY_CONFIGS[name]}
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 35]
    want = reference(write_numpy_checkpoint(tmp_path / name, cfg), cfg, ids)
    got = ours(tmp_path / name, ids, np.float64 if float64 else np.float32)
    for g, w in zip(got, want):
        assert np.abs(g - w).max() < tol


# ---------------------------------------------------------------- config and errors


def base_config(**extra) -> dict:
    return dict(
        model_type="llama", hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=48, **extra
    )


def test_config_reads_both_ways_of_writing_rotation_settings():
    old = read_config(base_config(rope_theta=500.0, rope_scaling={"type": "linear", "factor": 2.0}), "c")
    new = read_config(base_config(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}), "c")
    assert old.rope_global == new.rope_global and old.rope_global.base == 500.0 and old.G == 4 and old.q == 8
    g3 = read_config(
        dict(base_config(), model_type="gemma3_text", sliding_window=4, num_hidden_layers=7, rope_local_base_freq=10.0),
        "c",
    )
    assert g3.sliding == (True,) * 5 + (False, True) and g3.rope_local.base == 10.0 and g3.rope_global.base == 10000


@pytest.mark.parametrize(
    "change,words",
    [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "'yarn' is not supported"),
        ({"num_attention_heads": None}, "missing 'num_attention_heads'"),
        ({"num_key_value_heads": 3}, "num_key_value_heads 3"),
        ({"hidden_act": "relu6"}, "activation 'relu6' is not supported (attncli reads silu"),
        ({"head_dim": 0}, "head_dim must be a positive whole number"),
    ],
)
def test_bad_configs_are_one_error_naming_the_key(change, words):
    cfg = {k: v for k, v in {**base_config(), **change}.items() if v is not None}
    with pytest.raises(AttnError) as info:
        read_config(cfg, "m/config.json")
    assert words in str(info.value) and str(info.value).startswith("m/config.json: ")


def test_config_disagreeing_with_tensors_is_one_error_line(tmp_path):
    cfg = {**TINY, "model_type": "llama", "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 120}
    write_numpy_checkpoint(tmp_path / "m", {**cfg, "head_dim": 6})
    llama_tokenizer(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    line = one_error_line(cli("model", str(tmp_path / "m"), "The cat sat.").stderr)
    assert "layers.0.self_attn.q_proj.weight" in line and "head_dim 4" in line
    (tmp_path / "m" / "model.safetensors").unlink()
    write_numpy_checkpoint(tmp_path / "m", {**cfg, "head_dim": 6})
    from safetensors.numpy import load_file, save_file

    t = load_file(str(tmp_path / "m" / "model.safetensors"))
    del t["model.layers.1.mlp.up_proj.weight"]
    save_file(t, str(tmp_path / "m" / "model.safetensors"))
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "head_dim": 6}))
    line = one_error_line(cli("model", str(tmp_path / "m"), "The cat sat.").stderr)
    assert "layers.1.mlp.up_proj.weight" in line


@needs_hf
def test_model_cli_runs_a_llama_folder_end_to_end(tmp_path):
    save(hf_model("gemma3_text"), tmp_path / "g")
    ran = cli(
        "model",
        str(tmp_path / "g"),
        "The cat sat on the mat.",
        "--json",
        "--rollout",
        "--mean-heads",
        "--hide-special",
        "--npz",
        "g.npz",
    )
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["tokens"][0] == "<s>" and obj["model_type"] == "gemma3_text"
    assert obj["dims"]["kv_heads"] == 2 and obj["dims"]["q"] == 16  # head_dim, not r/H = 8
    assert [h["group"] for h in obj["heads"][:4]] == [1, 1, 2, 2]
    assert len(obj["layers"]) == 2 and len(obj["layers"][0]["heads"]) == 4
    A_prime = np.array(obj["layers"][0]["heads"][0]["A_prime"])
    assert np.allclose(np.triu(A_prime).sum(axis=0), 1, atol=1e-5)  # causal: keys ≤ query
    assert any(Path(f).name == "model.png" for f in obj["files"])


# ---------------------------------------------------------------- --generate


@needs_hf
@pytest.mark.parametrize("name", ["llama", "gemma2", "qwen3"])
def test_generate_gives_transformers_greedy_tokens_and_one_forward_pass_attention(tmp_path, name):
    """Greedy continuation with a key/value cache: the same new tokens as transformers'
    generate(do_sample=False), and the attention collected step by step (the prompt's
    square, then one column per new query) equals one full forward pass over the sequence."""
    import torch

    model = hf_model(name)
    ck = load(save(model, tmp_path / name))
    prompt, n_new = IDS[:6], 8
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n_new, do_sample=False)
    want = out[0, len(prompt) :].tolist()
    steps: dict[int, list[np.ndarray]] = {0: [], 1: []}
    new = llama.generate(ck, prompt, n_new, np.float32, lambda layer, A, P: steps[layer].append(P))
    assert new == want
    seq = prompt + new[:-1]  # the last new token was produced, never fed back
    full = ours(tmp_path / name, seq)
    for layer in (0, 1):
        A_prime = np.zeros_like(full[layer])
        A_prime[:, : len(prompt), : len(prompt)] = steps[layer][0]
        for k, P in enumerate(steps[layer][1:]):  # H × t × 1: the query at position len(prompt) + k
            A_prime[:, : P.shape[1], len(prompt) + k] = P[:, :, 0]
        assert np.abs(A_prime - full[layer]).max() < 1e-5


@needs_hf
def test_model_generate_marks_the_new_tokens_and_shows_one_pass_over_the_whole_sequence(tmp_path):
    """`model --generate N` adds the model's greedy tokens (transformers' generate gives the
    same ids), marks them in the JSON, and shows the attention of one forward pass over
    prompt and continuation."""
    import torch

    model = hf_model("llama")
    folder = save(model, tmp_path / "m")
    ran = cli("model", str(folder), "The cat sat", "--generate", "3", "--json", "--no-plot", "--layer", "1")
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    n_prompt = obj["generated"].index(True)
    assert obj["generated"] == [False] * n_prompt + [True] * (obj["n"] - n_prompt) and obj["n"] > n_prompt
    with torch.no_grad():
        out = model.generate(torch.tensor([obj["ids"][:n_prompt]]), max_new_tokens=3, do_sample=False)
    assert obj["ids"] == out[0, : obj["n"]].tolist()
    full = hf_attention(model, obj["ids"])[0][0]  # layer 1, head 1, notes' layout
    assert np.allclose(np.array(obj["layers"][0]["heads"][0]["A_prime"]), full, atol=1e-4)
    bad = cli("model", str(folder), "The cat", "--generate", "-1")
    assert bad.code == 2 and "--generate" in one_error_line(bad.stderr)


def test_grouped_query_heads_say_their_key_value_group_in_titles(tmp_path):
    """Figures name the key/value head each query head reads (heads 1–2 share K,V 1, …)."""
    from results import model_result

    from attncli.core.result import Dims
    from attncli.view import Shown

    result = model_result(["a", "b", "c"], layers=1, heads=4)
    result.dims = Dims(r=16, q=4, v=4, heads=4, n=3, layers=1, kv_heads=2)
    titles = [p.title for p in Shown(result).panels()]
    assert [t.split(":")[0] for t in titles] == [
        "layer 1, head 1 (K,V 1)",
        "layer 1, head 2 (K,V 1)",
        "layer 1, head 3 (K,V 2)",
        "layer 1, head 4 (K,V 2)",
    ]


def test_short_prompts_run_on_one_blas_thread_and_the_count_comes_back(tmp_path, monkeypatch):
    """Products of a short prompt are too small to share between OpenBLAS threads (each
    thread waits for the others; on a busy machine 3-5x slower): one thread while the
    blocks run, the previous count afterwards. Long prompts use the cores no other work
    keeps busy (the load average), never more than before."""
    import os

    from attncli.core import blas

    lib = blas._openblas()
    if lib is None:
        pytest.skip("numpy's BLAS is not OpenBLAS (or /proc is missing)")
    average, running = blas._load() or (0.0, 1)
    assert average >= 0 and running >= 1  # this process is running
    set_threads, get_threads = lib
    before = get_threads()
    set_threads(2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    cfg = {**TINY, "model_type": "llama", "num_key_value_heads": 2, "head_dim": 4, "max_position_embeddings": 300}
    write_numpy_checkpoint(tmp_path / "m", cfg)
    try:
        # (load average, runnable now): busy elsewhere only when both say so
        cases = (((0.2, 1), [1, 1, 2, 2]), ((0.9, 2), [1, 1, 1, 1]), ((7.0, 9), [1, 1, 1, 1]), ((1.3, 1), [1, 1, 2, 2]))
        for load_average, expected in cases:
            monkeypatch.setattr(blas, "_load", lambda average=load_average: average)
            seen: list[int] = []
            for n in (5, blas.SMALL + 1):
                llama.forward(load(tmp_path / "m"), [1] * n, np.float32, 2, lambda *_, s=seen: s.append(get_threads()))
            assert seen == expected and get_threads() == 2, load_average
        with blas.at_most(1):
            with blas.at_most(4):  # never raises the count
                assert get_threads() == 1
        assert get_threads() == 2
    finally:
        set_threads(before)


def test_the_bert_and_run_paths_take_their_blas_threads_from_the_rows_too(tmp_path, monkeypatch):
    import os
    import sys

    from attncli.core import blas, pipeline
    from attncli.core.settings import Settings

    fw = sys.modules["attncli.core.models.forward"]

    lib = blas._openblas()
    if lib is None:
        pytest.skip("numpy's BLAS is not OpenBLAS (or /proc is missing)")
    set_threads, get_threads = lib
    before = get_threads()
    set_threads(2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(blas, "_load", lambda: (0.0, 1))
    seen: list[int] = []
    real = fw.FORWARD["bert"]
    monkeypatch.setitem(fw.FORWARD, "bert", lambda *a: (seen.append(get_threads()), real(*a))[1])
    try:
        write_bert(tmp_path / "b", r=24, H=3, L=1)
        fw.run_model(str(tmp_path / "b"), "the cat sat")
        real_attend = pipeline._attend
        monkeypatch.setattr(pipeline, "_attend", lambda *a: (seen.append(get_threads()), real_attend(*a))[1])
        for words in (5, blas.SMALL + 2):
            pipeline.run(" ".join(["cat"] * words), Settings(max_tokens=1000))
        assert seen == [1, 1, 2] and get_threads() == 2
    finally:
        set_threads(before)


# ---------------------------------------------------------------- Gemma 3 with a vision tower


def relabel(folder: Path, out: Path, rename) -> Path:
    """A copy of a checkpoint folder with its tensors renamed (another transformers layout)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    shutil.copytree(folder, out)
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({rename(k): v for k, v in tensors.items()}, str(out / "model.safetensors"))
    return out


def newer_layout(name: str) -> str:
    """transformers ≥ 4.52 in memory: model.language_model.layers…, lm_head at the top."""
    if name.startswith("language_model.model."):
        return "model.language_model." + name[len("language_model.model.") :]
    if name.startswith("language_model.lm_head."):
        return name[len("language_model.") :]
    return name if name.startswith("model.") or name.startswith("lm_head.") else "model." + name


@needs_hf
def test_gemma3_multimodal_checkpoint_shows_its_language_models_attention(tmp_path):
    """model_type gemma3 (Gemma3ForConditionalGeneration: text_config nested, a SigLIP vision
    tower beside): the text part is read, under either prefix transformers writes, and every
    layer's and head's A' equals transformers' eager attentions on a text-only input."""
    from llama_helpers import hf_gemma3_multimodal
    from safetensors import safe_open

    model = hf_gemma3_multimodal()
    folder = save(model, tmp_path / "g3")
    with safe_open(str(folder / "model.safetensors"), "np") as fh:
        names = set(fh.keys())
    assert "language_model.model.layers.0.self_attn.q_norm.weight" in names  # as save_pretrained wrote it
    assert any(n.startswith("vision_tower.") for n in names)
    other = relabel(folder, tmp_path / "g3_newer", newer_layout)
    want = hf_attention(model, IDS)
    for path in (folder, other):
        got = ours(path)
        assert len(got) == len(want) == 2
        for g, w in zip(got, want):
            assert g.shape == w.shape == (4, len(IDS), len(IDS))
            assert np.abs(g - w).max() < 1e-4
    ran = cli("model", str(folder), "The cat sat on the mat.", "--json", "--no-plot")
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["model_type"] == "gemma3_text" and obj["dims"]["kv_heads"] == 2 and obj["dims"]["q"] == 16


def test_gemma3_multimodal_wrapper_gives_the_text_models_attention_without_torch(tmp_path):
    """The same random language model as a plain gemma3_text folder and inside a gemma3
    (image + text) folder with a vision tower beside it: the same attention, bit for bit."""
    from safetensors.numpy import load_file, save_file

    cfg = {
        **TINY,
        "model_type": "gemma2",
        "num_key_value_heads": 2,
        "sliding_window": 3,
        "query_pre_attn_scalar": 6,
        "hidden_activation": "gelu_pytorch_tanh",
    }
    write_numpy_checkpoint(tmp_path / "text", cfg)
    rng = np.random.default_rng(1)
    tensors = load_file(str(tmp_path / "text" / "model.safetensors"))
    for l in range(2):
        for part in ("q_norm", "k_norm"):
            tensors[f"model.layers.{l}.self_attn.{part}.weight"] = (0.2 * rng.standard_normal(6)).astype(np.float32)
    text = {**cfg, "model_type": "gemma3_text", "layer_types": ["sliding_attention", "full_attention"]}
    save_file(tensors, str(tmp_path / "text" / "model.safetensors"))
    (tmp_path / "text" / "config.json").write_text(json.dumps(text))
    wrapped = tmp_path / "wrapped"
    wrapped.mkdir()
    vision = {f"vision_tower.encoder.layers.{l}.self_attn.q_proj.weight": np.ones((4, 4), np.float32) for l in range(5)}
    save_file(
        {**{"language_model." + k: v for k, v in tensors.items()}, **vision, "multi_modal_projector.w": np.ones(2)},
        str(wrapped / "model.safetensors"),
    )
    top = {"model_type": "gemma3", "text_config": text, "vision_config": {"num_hidden_layers": 5}, "eos_token_id": 1}
    (wrapped / "config.json").write_text(json.dumps(top))
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    for g, w in zip(ours(wrapped, ids), ours(tmp_path / "text", ids)):
        assert np.array_equal(g, w)
    assert load(wrapped).config["eos_token_id"] == 1  # the top level's ids serve the text part


def test_gemma3_hub_config_leaves_out_what_gemma3textconfig_defaults():
    """The Hub's gemma-3-4b-it config.json names only what differs from Gemma3TextConfig's
    defaults; the rest is filled as transformers fills it."""
    from attncli.core.models.config import text_config

    hub = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "eos_token_id": [1, 106],
        "model_type": "gemma3",
        "text_config": {
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "model_type": "gemma3_text",
            "num_hidden_layers": 34,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "sliding_window": 1024,
        },
        "vision_config": {"model_type": "siglip_vision_model", "num_hidden_layers": 27},
    }
    cfg = read_config(text_config(hub, "c"), "c")
    assert (cfg.r, cfg.layers, cfg.H, cfg.G, cfg.q, cfg.window) == (2560, 34, 8, 4, 256, 1024)
    assert cfg.scale == 256**-0.5 and cfg.sliding == tuple((i + 1) % 6 != 0 for i in range(34))
    assert (cfg.rope_global.base, cfg.rope_global.kind, cfg.rope_global.factor) == (1e6, "linear", 8.0)
    assert (cfg.rope_local.base, cfg.rope_local.kind) == (1e4, "default") and cfg.tie
    if HAVE_HF:  # and as transformers reads the same file
        from transformers import Gemma3Config

        hf = Gemma3Config(**hub).get_text_config()
        assert (hf.num_attention_heads, hf.num_key_value_heads, hf.head_dim) == (cfg.H, cfg.G, cfg.q)
        assert hf.query_pre_attn_scalar**-0.5 == cfg.scale
        assert [t == "sliding_attention" for t in hf.layer_types] == list(cfg.sliding)


def _model_png(tmp_path: Path, kv_heads: int) -> np.ndarray:
    from matplotlib.image import imread
    from results import model_result

    from attncli.core.result import Dims
    from attncli.figures.select import figures
    from attncli.figures.style import Style
    from attncli.view import Shown

    result = model_result(["a", "b", "c", "d"], layers=2, heads=6)
    result.dims = Dims(r=24, q=4, v=4, heads=6, n=4, layers=2, kv_heads=kv_heads)
    (path,) = figures(Shown(result), tmp_path / str(kv_heads), Style(dpi=100), per_head=False)
    assert path.name == "model.png"
    return imread(path)[..., :3]


def _runs(row: np.ndarray) -> int:
    """How many separate stretches of drawn (not white) pixels a row of pixels crosses."""
    drawn = row.min(axis=1) < 0.9
    return int(drawn[0]) + int(np.count_nonzero(drawn[1:] & ~drawn[:-1]))


@pytest.mark.parametrize("kv_heads,rules", [(2, 1), (3, 2), (1, 0)])
def test_model_png_rules_off_the_groups_of_query_heads_sharing_keys_and_values(tmp_path, kv_heads, rules):
    """model.png: a thin rule (and GROUP_GAP more room) between two groups of query heads that
    read the same key/value head; none when every head has its own or all share one."""
    from attncli.figures.grid import GROUP_GAP

    plain, grouped = _model_png(tmp_path, 6), _model_png(tmp_path, kv_heads)
    assert grouped.shape[1] - plain.shape[1] == pytest.approx(rules * GROUP_GAP * 100, abs=1)
    for y in range(plain.shape[0] // 2, plain.shape[0]):  # rows of the lower panels
        if _runs(plain[y]) >= 6:
            assert _runs(grouped[y]) == _runs(plain[y]) + rules
            break
    else:
        raise AssertionError("no row crosses the panels")
