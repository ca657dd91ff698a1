"""Timing helpers for the benchmarks: interleaved repeats, medians, ratios.

Machines here are noisy: every figure is a ratio against a floor measured in the
same run, with the candidate and the floor interleaved so drift hits both.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def attncli_cmd() -> list[str]:
    """The attncli to measure: $ATTNCLI, else the one beside this Python, else on PATH."""
    if os.environ.get("ATTNCLI"):
        return os.environ["ATTNCLI"].split()
    exe = Path(PY).with_name("attncli")
    return [str(exe)] if exe.exists() else [shutil.which("attncli") or "attncli"]


def wall(cmd: list[str], stdin: bytes | None = None, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd,
        input=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - t


def compare(
    name: str,
    candidate: list[str],
    floor: list[str],
    repeats: int = 7,
    stdin: bytes | None = None,
    floor_stdin: bytes | None = None,
    target: str = "",
    warmup: int = 1,
) -> float:
    """Median wall time of each command (interleaved); prints and returns candidate / floor."""
    for _ in range(warmup):
        wall(candidate, stdin)
        wall(floor, floor_stdin)
    a, b = [], []
    for _ in range(repeats):
        a.append(wall(candidate, stdin))
        b.append(wall(floor, floor_stdin))
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = ma / mb
    print(f"{name}: {ma * 1000:.0f} ms vs floor {mb * 1000:.0f} ms -> ratio {ratio:.2f}  {target}")
    return ratio


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process, its output thrown away
    (/usr/bin/time: a child forked from this large process would count its pages)."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    err = proc.stderr.decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} …: exit status {proc.returncode}: {err[-2000:]}")
    wall, kb = err.strip().splitlines()[-1].split()
    return float(wall), int(kb) / 1024


def pair(
    ours: list[str], floor: list[str], repeats: int, env: dict[str, str] | None = None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Medians (wall, peak MiB) of the two whole processes, interleaved so drift hits both."""
    a, b = [], []
    for _ in range(repeats):
        a.append(measure(ours, env))
        b.append(measure(floor, env))
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    return (med(a, 0), med(a, 1)), (med(b, 0), med(b, 1))
