"""Signals at random moments: SIGINT (Ctrl-C, to the whole process group), SIGTERM
(``timeout``, ``docker stop``: to the parent alone) and SIGHUP (a closed terminal: to the
group), during a parallel figure job and during a stdin batch. Each trial asserts: exit
0 (the work had finished) or 128 + n with one ``error:`` line, no traceback, no process of
the group left running, and no ``.part`` file.

ATTNCLI_SIGNAL_TRIALS sets the trials per signal and job (default 3, ~20 s in all)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import one_error_line

TRIALS = int(os.environ.get("ATTNCLI_SIGNAL_TRIALS", "3"))
SENTENCE = " ".join(f"word{i}" for i in range(30))
EXE = Path(sys.executable).with_name("attncli")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def handles(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler for ``sig`` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught >> (sig - 1) & 1)


def trial(args: list[str], sig: int, delay: float, tmp: Path, to_group: bool, lines: int = 0) -> None:
    proc = subprocess.Popen(
        [str(EXE), *args],
        cwd=tmp,
        stdin=subprocess.PIPE if lines else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, as a shell job is
    )
    if lines:

        def feed() -> None:
            try:
                for k in range(lines):
                    proc.stdin.write(f"{SENTENCE} line{k}\n".encode())
                    proc.stdin.flush()
                proc.stdin.close()
            except OSError:
                pass

        threading.Thread(target=feed, daemon=True).start()
    # Python's own start-up (20-80 ms, before any attncli code runs) is not ours to handle:
    # the clock starts once the handlers are in place, a few milliseconds later
    while not handles(proc.pid, signal.SIGHUP):  # Python itself catches SIGINT; only attncli SIGHUP
        time.sleep(0.001)
    time.sleep(delay)
    try:
        os.killpg(proc.pid, sig) if to_group else os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    deadline = time.monotonic() + 2.0
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group_members(proc.pid)
    parts = [p.name for p in tmp.rglob("*.part")]
    where = f"signal {sig} after {delay:.2f} s: exit {code}, stderr {err!r}"
    assert not left, f"{where}: processes left running {left}"
    assert not parts, f"{where}: temporary files left {parts}"
    assert "Traceback" not in err, where
    assert code in (0, 128 + sig), where
    if code:
        assert one_error_line(err)


@pytest.mark.parametrize("sig,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, True)])
def test_signal_during_parallel_figures(tmp_path, sig, to_group):
    rng = random.Random(sig)
    for _ in range(TRIALS):
        trial(["run", SENTENCE, "-H", "12", "-r", "48", "-q"], sig, rng.uniform(0, 1.2), tmp_path, to_group)


@pytest.mark.parametrize("sig,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, True)])
def test_signal_during_stdin_batch(tmp_path, sig, to_group):
    rng = random.Random(10 + sig)
    for _ in range(TRIALS):
        trial(["run", "-H", "4", "-r", "16", "-q"], sig, rng.uniform(0, 1.2), tmp_path, to_group, lines=40)
