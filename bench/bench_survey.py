"""`attncli survey` throughput: sentences per second for a 6-layer, 384-wide random BERT
(12 heads, like all-MiniLM-L6-v2) on 2,000 sentences, with 1 and 2 workers (`--workers 1`
runs in the command's own process when its BLAS kernels are a worker's),
against a `transformers` loop computing the same statistics (output_attentions=True, one
torch thread: per core) in the same run, and through a Dask LocalCluster with 2 workers.

    python bench/bench_survey.py [--sentences 2000] [--repeats 1]

Every figure is a whole command (start-up and model loading included), timed in this run;
the ratios are what bench/README.md records. Needs transformers + torch for the floor and
dask[distributed] for the cluster; either missing is skipped with a note. When the
environment pins OpenBLAS (OPENBLAS_CORETYPE, e.g. to Haswell's AVX2 kernels on an
AVX-512 machine, and OPENBLAS_L2_SIZE, set on some machines only because old OpenBLAS
builds crash there), the attncli runs are repeated with both unset in those commands alone,
as on a machine that sets neither (see survey_run.worker_environment). The script prints
which OpenBLAS kernels each side runs (attncli's blas.core, and threadpoolctl where it is
installed, for numpy and for torch's process), asked in separate untimed processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

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


CPU: dict[str, list[float]] = {}  # CPU seconds (user + system) of each local command and its worker processes


def children_cpu() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed(cmd: list[str], unset: tuple[str, ...] = (), name: str = "") -> tuple[float, str]:
    """Wall seconds and stdout of a command; its CPU time (every process it waited for
    included: survey's pool workers) goes to CPU[name], which the machine's other load
    disturbs less than the wall time."""
    t, cpu = time.perf_counter(), children_cpu()
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    if name:
        CPU.setdefault(name, []).append(children_cpu() - cpu)
    return time.perf_counter() - t, done.stdout


PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # unset together for the unpinned runs

KERNELS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "torch":
    import torch  # noqa: F401  (its BLAS, as the floor loads it)
import numpy  # noqa: F401
from attncli.core import blas
out = {"numpy OpenBLAS core (blas.core)": blas.core()}
try:
    from threadpoolctl import threadpool_info
    out["threadpoolctl"] = [
        {k: i.get(k) for k in ("internal_api", "architecture", "version", "num_threads")} for i in threadpool_info()
    ]
except ImportError:
    out["threadpoolctl"] = "not installed"
if sys.argv[2] == "torch":  # torch's own BLAS (MKL/oneDNN, linked in: threadpoolctl does not list it)
    config = torch.__config__.show()
    blas_info = [part.strip() for part in config.replace("\n", ",").split(",") if "BLAS_INFO" in part]
    out["torch"] = {"blas": blas_info, "cpu capability": torch.backends.cpu.get_cpu_capability()}
print(json.dumps(out))
"""


def kernels(side: str, unset: tuple[str, ...] = ()) -> str:
    """Which BLAS kernels a process of this environment (less ``unset``) runs, asked in a
    separate process that is not timed."""
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", KERNELS, str(HERE.parent), side], capture_output=True, text=True, env=env
    )
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def survey_cmd(folder: Path, corpus: Path, *extra: str) -> list[str]:
    return [*attncli_cmd(), "survey", str(folder), str(corpus), "--json", "--no-plot", "--induction", "0", *extra]


def dask_run(folder: Path, corpus: Path) -> tuple[float, str]:
    """The survey through a fresh LocalCluster of 2 worker processes (started before the
    clock, cold like local workers), whose workers start with the local workers' environment
    (one BLAS thread, the same kernels), set before numpy loads OpenBLAS in them."""
    import dask
    from distributed import LocalCluster

    from attncli.core.survey_run import worker_environment

    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **worker_environment()}
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
    ):
        return timed(survey_cmd(folder, corpus, "--dask", cluster.scheduler_address))


def largest_difference(a: str, b: str) -> float:
    """The largest relative difference between two surveys' means."""
    pairs = zip(json.loads(a)["results"], json.loads(b)["results"])
    return max(
        abs(x["metrics"][m]["mean"] - y["metrics"][m]["mean"]) / max(1e-12, abs(y["metrics"][m]["mean"]))
        for x, y in pairs
        for m in x["metrics"]
        if x["metrics"][m]["mean"] is not None
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds; medians are reported")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="attncli-survey-bench-"))
    try:
        measure(tmp, args.sentences, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(tmp: Path, sentences: int, repeats: int) -> None:
    folder, corpus = tmp / "bert", tmp / "corpus.txt"
    make_model(folder)
    make_corpus(corpus, sentences)
    n = sentences
    pinned = " ".join(f"{k}={os.environ[k]}" for k in PINS if k in os.environ)
    runs: dict[str, Callable[[], tuple[float, str]]] = {
        f"workers {w}": partial(timed, survey_cmd(folder, corpus, "--workers", str(w)), name=f"workers {w}")
        for w in (1, 2)
    }
    if importlib.util.find_spec("torch") and importlib.util.find_spec("transformers"):
        floor = [sys.executable, "-c", FLOOR, str(folder), str(corpus), str(HERE.parent)]
        runs["transformers"] = partial(timed, floor, name="transformers")
    else:
        print("transformers/torch not installed: no floor")
    if importlib.util.find_spec("distributed"):
        runs["dask 2"] = partial(dask_run, folder, corpus)
    else:
        print("dask[distributed] not installed: no cluster run")
    if pinned:  # as on a machine whose environment pins neither (both unset together)
        for w in (1, 2):
            cmd = survey_cmd(folder, corpus, "--workers", str(w))
            runs[f"unpinned {w}"] = partial(timed, cmd, unset=PINS, name=f"unpinned {w}")
    print("environment:", {k: os.environ.get(k) for k in PINS})
    print("attncli kernels:", kernels("numpy"))
    if pinned:
        print(f"attncli kernels, {' and '.join(PINS)} unset:", kernels("numpy", PINS))
    if "transformers" in runs:
        print("transformers floor's process:", kernels("torch"))
    print("load average before: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    outputs: dict[str, str] = {}
    for r in range(repeats):
        for name, run in runs.items():
            sec, outputs[name] = run()
            seconds[name].append(sec)
            print(f"round {r + 1}: {name}: {sec:.1f} s, {n / sec:.1f} sentences/s", flush=True)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    report(n, seconds, outputs, pinned)


def report(n: int, seconds: dict[str, list[float]], outputs: dict[str, str], pinned: str | None) -> None:
    rates = {name: n / statistics.median(secs) for name, secs in seconds.items()}
    print()
    for name, rate in rates.items():
        print(f"{name}: median {n / rate:.1f} s, {rate:.1f} sentences/s")
    print()
    cpu = {name: statistics.median(secs) for name, secs in CPU.items()}
    for name, sec in cpu.items():
        print(f"{name}: median CPU {sec:.1f} s (all its processes)")
    if "transformers" in rates:
        print(
            f"per core: attncli 1 worker / transformers = {rates['workers 1'] / rates['transformers']:.2f}×"
            f" (target ≥ 3×); by CPU time {cpu['transformers'] / cpu['workers 1']:.2f}×"
        )
    print(f"speed-up 1 → 2 workers: {rates['workers 2'] / rates['workers 1']:.2f}× (target ≥ 1.8×)")
    if "dask 2" in rates:
        same = json.loads(outputs["dask 2"])["results"] == json.loads(outputs["workers 2"])["results"]
        print(
            f"Dask overhead vs local 2 workers: {rates['workers 2'] / rates['dask 2'] - 1:+.0%} (target < 20%);"
            f" same result as local: {same}"
        )
    if pinned:
        print(
            f"without {pinned} (OpenBLAS's own choice, SKYLAKEX for workers on an AVX-512 CPU; largest"
            f" relative difference of a mean from the pinned run:"
            f" {largest_difference(outputs['unpinned 1'], outputs['workers 1']):.1e}):"
        )
        if "transformers" in rates:
            print(
                f"  per core: 1 worker / transformers = {rates['unpinned 1'] / rates['transformers']:.2f}×;"
                f" by CPU time {cpu['transformers'] / cpu['unpinned 1']:.2f}×"
            )
        print(f"  speed-up 1 → 2 workers: {rates['unpinned 2'] / rates['unpinned 1']:.2f}×")


if __name__ == "__main__":
    main()
