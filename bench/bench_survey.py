"""`attncli survey` throughput: sentences per second for a 6-layer, 384-wide random BERT
(12 heads, like all-MiniLM-L6-v2) on 2,000 sentences, with 1 and 2 worker processes,
against a `transformers` loop computing the same statistics (output_attentions=True, one
torch thread: per core) in the same run, and through a Dask LocalCluster with 2 workers.

    python bench/bench_survey.py [--sentences 2000] [--repeats 1]

Every figure is a whole command (start-up and model loading included), timed in this run;
the ratios are what bench/README.md records. Needs transformers + torch for the floor and
dask[distributed] for the cluster; either missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from common import attncli_cmd  # noqa: E402

WORDS = (
    "the a cat dog sat ran on under mat house garden . , ! ? and then it slept quickly slowly "
    "big small red green tree river walked talked about with from into over ; : old new"
).split()

FLOOR = r"""
import sys, time, json
import numpy as np
import torch
from transformers import BertModel, PreTrainedTokenizerFast
sys.path.insert(0, sys.argv[3])
from attncli.core.survey import Acc, Seq, add_sequence
torch.set_num_threads(1)
t0 = time.perf_counter()
folder, corpus = sys.argv[1], sys.argv[2]
tok = PreTrainedTokenizerFast(tokenizer_file=folder + "/tokenizer.json", cls_token="[CLS]", sep_token="[SEP]")
model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
acc = None
with torch.inference_mode():
    for line in open(corpus, encoding="utf-8"):
        enc = tok(line.rstrip("\n"), return_tensors="pt", return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")[0].bool().tolist()
        out = model(**enc, output_attentions=True)
        A = np.stack([a[0].numpy() for a in out.attentions]).transpose(0, 1, 3, 2)  # notes' layout
        if acc is None:
            acc = Acc.zeros(A.shape[0], A.shape[1])
        ids = enc["input_ids"][0].tolist()
        add_sequence(acc, A, Seq(tok.convert_ids_to_tokens(ids), special, ids, False))
print(json.dumps({"seconds": time.perf_counter() - t0, "previous": acc.mean()[..., 5].tolist()}))
"""


def make_model(folder: Path) -> None:
    import numpy as np
    from helpers import write_bert
    from safetensors.numpy import load_file, save_file

    write_bert(folder, vocab=2000, r=384, H=12, L=6, inter=1536)
    tensors = load_file(str(folder / "model.safetensors"))  # 512 positions, as MiniLM has
    tensors["embeddings.position_embeddings.weight"] = (
        np.random.default_rng(1).standard_normal((512, 384)).astype(np.float32) * 0.3
    )
    save_file(tensors, str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(architectures=["BertModel"], type_vocab_size=2, pad_token_id=0, max_position_embeddings=512)
    (folder / "config.json").write_text(json.dumps(cfg))


def make_corpus(path: Path, n: int) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + "\n")


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return time.perf_counter() - t, done.stdout


def survey_cmd(folder: Path, corpus: Path, *extra: str) -> list[str]:
    return [*attncli_cmd(), "survey", str(folder), str(corpus), "--json", "--no-plot", "--induction", "0", *extra]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="attncli-survey-bench-"))
    folder, corpus = tmp / "bert", tmp / "corpus.txt"
    make_model(folder)
    make_corpus(corpus, args.sentences)
    n = args.sentences
    rates: dict[str, float] = {}
    results: dict[str, str] = {}
    for w in (1, 2):
        sec, out = timed(survey_cmd(folder, corpus, "--workers", str(w)))
        rates[f"workers {w}"] = n / sec
        results[f"workers {w}"] = out
        print(f"attncli survey --workers {w}: {sec:.1f} s, {n / sec:.1f} sentences/s", flush=True)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        sec, out = timed([sys.executable, "-c", FLOOR, str(folder), str(corpus), str(HERE.parent)])
        rates["transformers"] = n / sec
        print(f"transformers loop (1 torch thread): {sec:.1f} s, {n / sec:.1f} sentences/s", flush=True)
    except ImportError:
        print("transformers/torch not installed: no floor")
    try:
        import dask
        from distributed import LocalCluster

        from attncli.core.survey_run import worker_environment

        # the workers' environment as local workers have it (one BLAS thread, the same
        # kernels), set before each worker process starts, i.e. before numpy loads OpenBLAS
        environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **worker_environment()}
        with (
            dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        ):
            sec, out = timed(survey_cmd(folder, corpus, "--dask", cluster.scheduler_address))
        rates["dask 2"] = n / sec
        same = json.loads(out)["results"] == json.loads(results["workers 2"])["results"]
        print(
            f"attncli survey --dask (LocalCluster, 2 workers): {sec:.1f} s, {n / sec:.1f} sentences/s;"
            f" same result as local: {same}",
            flush=True,
        )
    except ImportError:
        print("dask[distributed] not installed: no cluster run")
    print()
    if "transformers" in rates:
        print(
            f"per core: attncli 1 worker / transformers = {rates['workers 1'] / rates['transformers']:.2f}×"
            " (target ≥ 3×)"
        )
    print(f"speed-up 1 → 2 workers: {rates['workers 2'] / rates['workers 1']:.2f}× (target ≥ 1.8×)")
    if "dask 2" in rates:
        print(f"Dask overhead vs local 2 workers: {rates['workers 2'] / rates['dask 2'] - 1:+.0%} (target < 20%)")


if __name__ == "__main__":
    main()
