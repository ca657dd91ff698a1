"""GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them: the same
tokens as the original tokenizer, and the same attention as transformers running the same
(dequantised) weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from gguf_helpers import gguf_name, random_kquant, unpermute, write_gguf
from llama_helpers import hf_attention, hf_model, llama_tokenizer, save, sentencepiece_tokenizer

from attncli.core.models import llama
from attncli.core.models.gguf import is_gguf, load_gguf
from attncli.errors import AttnError

pytest.importorskip("gguf")
HAVE_HF = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None
needs_hf = pytest.mark.skipif(not HAVE_HF, reason="transformers and torch are not installed")
IDS = [1, 5, 9, 17, 3, 44, 100, 7, 8, 12, 30, 31]
TEXTS = ["The cat sat on the mat.", "Ünïcode  spaces\tand 42 dogs!", "queries across <s> rows </s>", " lead"]


def ours(path: Path, ids=IDS) -> list[np.ndarray]:
    ck = load_gguf(path)
    got: list[np.ndarray] = []
    llama.forward(ck, ids, np.float32, 2, lambda layer, A, P: got.append(P))
    return got


def rounded(model, qtype: str):
    """The model with every 2-D weight replaced by what the GGUF file holds:
    dequantise(quantise(W)) with gguf.quants (float16 for F16)."""
    import gguf
    import torch

    q = gguf.GGMLQuantizationType[qtype]
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 2 and qtype != "F32":
                w = p.numpy()
                back = (
                    w.astype(np.float16).astype(np.float32)
                    if qtype == "F16"
                    else gguf.quants.dequantize(gguf.quants.quantize(w, q), q)
                )
                p.copy_(torch.from_numpy(np.ascontiguousarray(back)))
    return model


@needs_hf
@pytest.mark.parametrize("name", ["llama", "llama_mqa", "qwen2_gguf", "qwen3", "gemma", "gemma2_gguf", "gemma3_gguf"])
@pytest.mark.parametrize("qtype", ["F32", "Q4_0"])
def test_every_family_matches_transformers_on_the_same_weights(tmp_path, name, qtype):
    """Bound 1e-4 for every type: the reference runs the very float32 numbers the file
    dequantises to, so only float32 rounding is left (quantisation error itself is
    measured in test_quantisation_error_against_the_original_model)."""
    model = hf_model(name)
    path = write_gguf(save(model, tmp_path / name), tmp_path / f"{name}.gguf", qtype)
    want = hf_attention(rounded(model, qtype), IDS)
    for g, w in zip(ours(path), want):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
def test_llama3_rope_scaling_from_the_files_rope_freqs(tmp_path):
    """llama.cpp bakes Llama 3.1's rope scaling into a rope_freqs tensor (θ_k / f_k)."""
    model = hf_model("llama3_rope")
    path = write_gguf(save(model, tmp_path / "m"), tmp_path / "m.gguf", "F32")
    for g, w in zip(ours(path), hf_attention(model, IDS)):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
@pytest.mark.parametrize("qtype", ["F16", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16"])
def test_every_quantisation_matches_transformers_on_the_same_weights(tmp_path, qtype):
    model = hf_model("llama")
    path = write_gguf(save(model, tmp_path / "m"), tmp_path / "m.gguf", qtype)
    want = hf_attention(rounded(model, qtype if qtype != "BF16" else "F32"), IDS) if qtype != "BF16" else None
    if qtype == "BF16":  # bf16 keeps the top 16 bits of float32
        import torch

        with torch.no_grad():
            for p in model.parameters():
                if p.ndim == 2:
                    p.copy_(p.to(torch.bfloat16).float())
        want = hf_attention(model, IDS)
    for g, w in zip(ours(path), want):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
@pytest.mark.parametrize("name", ["llama", "qwen2_gguf"])
def test_transformers_loading_the_gguf_file_agrees(tmp_path, name):
    """transformers' own GGUF loader (it reverses llama.cpp's q/k permutation itself)."""
    pytest.importorskip("accelerate")
    import transformers

    model = hf_model(name)
    path = write_gguf(save(model, tmp_path / name), tmp_path / "m.gguf", "F16")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path), gguf_file=path.name, attn_implementation="eager", dtype="float32"
    )
    for g, w in zip(ours(path), hf_attention(theirs, IDS)):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
@pytest.mark.parametrize("qtype,bound", [("Q8_0", 0.05), ("Q4_0", 0.8)])
def test_quantisation_error_against_the_original_model(tmp_path, qtype, bound):
    """How far quantisation itself moves A' on these random weights (std 0.25, sharp
    attention): Q8_0 keeps 8 bits per weight (relative step 1/127 of a block's largest),
    Q4_0 4 bits (1/8): one softmax column can move by most of its mass at 4 bits."""
    model = hf_model("llama")
    path = write_gguf(save(model, tmp_path / "m"), tmp_path / "m.gguf", qtype)
    for g, w in zip(ours(path), hf_attention(model, IDS)):
        assert np.abs(g - w).max() < bound


@needs_hf
@pytest.mark.parametrize("kind", ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
def test_k_quants_match_transformers_on_the_dequantised_weights(tmp_path, kind):
    """K-quant blocks hold 256 weights, so rows of 256: a llama with r = 256. The file gets
    random blocks (gguf.quants cannot write K-quants); transformers gets their dequantised
    values, un-permuted for q/k as llama.cpp's converter permuted them."""
    import gguf
    import torch
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=120,
        hidden_size=256,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    save(model, tmp_path / "m")
    rng, raw = np.random.default_rng(0), {}
    q = gguf.GGMLQuantizationType[kind]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim != 2:
                continue
            data = random_kquant(rng, p.shape[0], p.shape[1], kind)
            raw[gguf_name(name, "llama")] = (data, kind)
            w = gguf.quants.dequantize(data, q)
            heads = 4 if "q_proj" in name else 2 if "k_proj" in name else 0
            p.copy_(torch.from_numpy(np.ascontiguousarray(unpermute(w, heads) if heads else w)))
    path = write_gguf(tmp_path / "m", tmp_path / "m.gguf", "F32", raw=raw)
    for g, w in zip(ours(path), hf_attention(model, IDS)):
        assert np.abs(g - w).max() < 1e-4


@needs_hf
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_tokens_are_the_original_tokenizers(tmp_path, kind):
    from tokenizers import Tokenizer

    folder = save(hf_model("llama"), tmp_path / "m")
    if kind == "llama":
        sentencepiece_tokenizer(folder)
    original = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok = load_gguf(write_gguf(folder, tmp_path / "m.gguf", "F32", tokenizer=kind)).tokenizer()
    for text in TEXTS:
        a, b = original.encode(text), tok.encode(text)
        assert a.ids == b.ids and a.tokens == b.tokens, text
        assert b.special_tokens_mask[0] == 1 and b.tokens[0] == "<s>"  # BOS added, and special


@needs_hf
def test_the_checkpoint_carries_its_tokenizer_and_nothing_is_registered(tmp_path):
    """Two GGUF files with different vocabularies, each read through its own checkpoint's
    tokenizer; nothing is left in a registry for ``tokenize(path)`` to find."""
    from attncli.core.models.forward import run_model
    from attncli.core.tokenize import tokenize

    model = hf_model("llama")
    big, small = save(model, tmp_path / "big"), save(model, tmp_path / "small")
    llama_tokenizer(small, 90)  # fewer merges: longer words split further
    paths = [write_gguf(folder, tmp_path / f"{folder.name}.gguf", "F32") for folder in (big, small)]
    text = "The cat sat on the mat."
    got = [run_model(path, text, layers=[1]).tokens.tokens for path in paths]
    for path, tokens in zip(paths, got):
        assert tokens == load_gguf(path).tokenizer().encode(text).tokens
    assert got[0] != got[1]
    with pytest.raises(AttnError, match="tokenizer"):
        tokenize(text, paths[0])  # a GGUF file is no tokenizer.json, and no registry holds it


# ---------------------------------------------------------------- errors


@needs_hf
def test_truncated_and_malformed_files_are_one_error_line(tmp_path):
    path = write_gguf(save(hf_model("llama"), tmp_path / "m"), tmp_path / "m.gguf", "Q8_0")
    data = path.read_bytes()
    for cut in (3, 40, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        with pytest.raises(AttnError, match="not a valid GGUF file|cannot be dequantised|truncated"):
            ours(bad)
    line = one_error_line(cli("model", str(tmp_path / f"cut{len(data) // 2}.gguf"), "The cat").stderr)
    assert "cut" in line


def test_unknown_quantisation_and_architecture_are_refused_by_name(tmp_path):
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "x.gguf"), "llama")
    for key, value in {"block_count": 1, "embedding_length": 32, "feed_forward_length": 32}.items():
        w.add_uint32(f"llama.{key}", value)
    w.add_head_count(4)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b", "ab"])
    w.add_token_merges(["a b"])
    size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.IQ4_NL][1]
    w.add_tensor("token_embd.weight", np.zeros((2, size), np.uint8), raw_dtype=gguf.GGMLQuantizationType.IQ4_NL)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ck = load_gguf(tmp_path / "x.gguf")
    with pytest.raises(AttnError, match="quantisation IQ4_NL is not supported"):
        ck.get("embed_tokens.weight")
    w = gguf.GGUFWriter(str(tmp_path / "y.gguf"), "phi3")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    with pytest.raises(AttnError, match="architecture 'phi3' is not supported"):
        load_gguf(tmp_path / "y.gguf")
    assert is_gguf(tmp_path / "y.gguf") and not is_gguf(tmp_path)


@needs_hf
def test_model_cli_reads_a_gguf_file(tmp_path):
    folder = save(hf_model("qwen3"), tmp_path / "m")
    path = write_gguf(folder, tmp_path / "m.gguf", "Q8_0")
    ran = cli("model", str(path), "The cat sat on the mat.", "--json", "--layer", "2", "--hide-special")
    assert ran.code == 0, ran.stderr
    obj = json.loads(ran.stdout)
    assert obj["tokens"][0] == "<s>" and obj["model_type"] == "qwen3" and obj["layers"][0]["layer"] == 2
    assert any(Path(f).name == "model.png" for f in obj["files"])


@needs_hf
def test_any_corruption_of_a_gguf_file_is_an_error_line_or_a_model(tmp_path):
    """Bytes flipped anywhere (header, metadata, tensor table, data): load_gguf and the
    forward pass end in tensors or one AttnError, never another exception."""
    path = write_gguf(save(hf_model("llama"), tmp_path / "m"), tmp_path / "m.gguf", "Q8_0")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for k in range(60):
        bad = bytearray(data)
        at = int(rng.integers(4, 2000 if k % 2 else len(data)))
        bad[at : at + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        (tmp_path / "bad.gguf").write_bytes(bytes(bad))
        try:
            with np.errstate(all="ignore"):
                ours(tmp_path / "bad.gguf")
        except AttnError:
            pass


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
def test_dequantising_by_larger_chunks_gives_gguf_s_own_numbers(monkeypatch, kind):
    """Rows dequantised 64 KB at a time (here a few rows, so that chunks end mid-tensor)
    with gguf's own block code: exactly what gguf.quants.dequantize gives."""
    import gguf
    from gguf import quants

    from attncli.core.models import gguf as reader

    monkeypatch.setattr(reader, "CHUNK", 3000)
    qtype = gguf.GGMLQuantizationType[kind]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(37, 512 // block * size), dtype=np.uint8)
    with np.errstate(all="ignore"):  # random bytes: some float16 scales are inf or NaN
        want = quants.dequantize(data, qtype)
        got = reader.dequantize(Path(kind), type("T", (), {"name": "t", "tensor_type": qtype, "data": data})())
    assert got.shape == want.shape == (37, 512) and np.array_equal(got, want, equal_nan=True)
