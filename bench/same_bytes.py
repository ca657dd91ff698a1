"""Same bytes before and after a change: run a fixed set of commands and keep (or compare)
every JSON, npz and figure they write.

    python bench/same_bytes.py record DIR     # on the commit before a change
    python bench/same_bytes.py compare DIR    # after it: lists every file that differs

The set: `run` with 1 and 4 heads, sparsemax, causal, positions, loaded vectors and
weights, a batch, `explain`, `tokens`, and `model` on a tiny BERT and GPT-2 with
`--rollout` and `--hide-special`. Exit 1 when anything differs (a difference may be
deliberate: list it in the CHANGELOG).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

S = "The cat sat on the mat ."
SAMPLES = ROOT / "sample_inputs"

COMMANDS: list[tuple[str, list[str], str | None]] = [
    ("run1", ["run", S, "--json", "--npz", "run1.npz", "-o", "run1"], None),
    ("run4", ["run", S, "-H", "4", "--json", "--npz", "run4.npz", "-o", "run4", "--mean-heads"], None),
    ("sparse", ["run", S, "--norm", "sparsemax", "--json", "-o", "sparse"], None),
    ("causal", ["run", S, "--causal", "-H", "2", "--json", "-o", "causal", "--matrix", "A"], None),
    ("pos", ["run", S, "--positions", "sinusoidal", "--json", "--npz", "pos.npz", "-o", "pos"], None),
    (
        "loaded",
        [
            "run",
            S,
            "-e",
            str(SAMPLES / "glove.txt"),
            "--weights",
            str(SAMPLES / "weights.npz"),
            "--json",
            "-o",
            "loaded",
        ],
        None,
    ),
    ("svg", ["run", S, "-H", "2", "--image-format", "svg", "-o", "svg", "--json"], None),
    (
        "batch",
        ["run", "--json", "-H", "2", "-o", "batch", "--npz", "batch.npz"],
        "The cat sat .\nA dog sat on the mat .\n",
    ),
    ("explain", ["explain", S, "--query", "3", "--json"], None),
    ("tokens", ["tokens", S, "--json"], None),
    ("bert", ["model", "{bert}", S, "--json", "--npz", "bert.npz", "-o", "bert", "--rollout", "--mean-heads"], None),
    ("bert_hide", ["model", "{bert}", S, "--json", "-o", "bert_hide", "--hide-special", "--layer", "2"], None),
    ("gpt2", ["model", "{gpt2}", S, "--json", "--npz", "gpt2.npz", "-o", "gpt2", "--rollout", "--head", "1-2"], None),
]


def attncli() -> list[str]:
    exe = Path(sys.executable).with_name("attncli")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "attncli"]


def produce(out: Path) -> None:
    from helpers import write_bert, write_gpt2

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"bert": Path(tmp) / "bert", "gpt2": Path(tmp) / "gpt2"}
        write_bert(models["bert"])
        write_gpt2(models["gpt2"])
        for name, args, stdin in COMMANDS:
            args = [a.format(**{k: str(v) for k, v in models.items()}) for a in args]
            env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
            done = subprocess.run(
                attncli() + args, input=stdin.encode() if stdin else None, cwd=out, capture_output=True, env=env
            )
            text = done.stdout.decode().replace(tmp, "MODELS")
            (out / f"{name}.stdout").write_text(text)
            if done.returncode:
                print(f"{name}: exit {done.returncode}: {done.stderr.decode().strip()}")


def compare(before: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        after = Path(tmp)
        produce(after)
        a = sorted(p.relative_to(before) for p in before.rglob("*") if p.is_file())
        b = sorted(p.relative_to(after) for p in after.rglob("*") if p.is_file())
        differ = [
            p
            for p in sorted(set(a) | set(b))
            if not (
                (before / p).is_file() and (after / p).is_file() and filecmp.cmp(before / p, after / p, shallow=False)
            )
        ]
        for p in differ:
            print(f"differs: {p}")
        print(f"{len(set(a) | set(b)) - len(differ)} files the same, {len(differ)} differ")
        if differ and os.environ.get("KEEP"):
            shutil.copytree(after, os.environ["KEEP"], dirs_exist_ok=True)
        return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "compare"):
        sys.exit(__doc__)
    if sys.argv[1] == "record":
        produce(Path(sys.argv[2]))
    else:
        sys.exit(compare(Path(sys.argv[2])))
