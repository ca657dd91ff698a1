"""Drawing jobs in forked child processes that end with the parent (signals, a dead
parent), their temporary files removed; only paths come back. One process per job; a
batch keeps matplotlib's caches warm in the parent, where single jobs run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from attncli import stop
from attncli.errors import AttnError


def worker_count(panels: int) -> int:
    """Processes worth starting: several only for many panels, where fork exists."""
    import multiprocessing
    import os

    if panels < 4 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def run_jobs(jobs: list[Callable[[], list[Path]]], parallel: bool) -> list[Path]:
    """Run the drawing jobs, each in a forked child process when asked and worth it.

    The children end with the parent: a signal to the parent (Ctrl-C, ``timeout``,
    ``docker stop``, a closed terminal) ends them and waits for them before it exits
    (:mod:`attncli.stop`), and on Linux a child whose parent has died is sent SIGTERM by
    the kernel (PR_SET_PDEATHSIG). A child that is stopped removes its temporary file
    first. Only paths cross back, as JSON."""
    if not parallel or len(jobs) < 2:
        return [p for job in jobs for p in job()]
    started: dict[int, int] = {}  # pid -> the read end of its result pipe
    try:
        for job in jobs:
            with stop.deferred():  # no signal handler runs between fork and the records
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    _child(job, w)
                os.close(w)
                started[pid] = r
                stop.children.add(pid)
        written = []
        for pid in list(started):
            written += _collect(pid, started.pop(pid))
        return written
    finally:
        _end(started)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends this process SIGTERM when its parent dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(143)


def _child(job: Callable[[], list[Path]], w: int) -> None:
    """The forked child (signals still held back): run ``job``, write its paths (or its
    error) as JSON, and leave with os._exit (nothing of the parent's, such as its
    buffered stdout, is run twice)."""
    import json

    code = 0
    try:
        stop.in_child()
        _die_with_parent(os.getppid())
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop.SIGNALS)
        try:
            payload: dict[str, object] = {"paths": [str(p) for p in job()]}
        except AttnError as exc:
            payload = {"error": exc.message, "code": exc.code}
        except MemoryError:
            payload = {"error": "out of memory while drawing", "code": 1}
        except Exception as exc:  # a bug or an unforeseen failure: the parent says it in one line
            payload = {"error": f"{type(exc).__name__}: {exc}", "code": 1}
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(w, data) :]
    except BaseException:
        code = 1
    os._exit(code)


def _collect(pid: int, r: int) -> list[Path]:
    """The paths one child wrote, once it has ended; its error raised here."""
    import json

    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    stop.children.discard(pid)
    try:
        payload = json.loads(data)
    except ValueError:
        how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else "an error"
        raise AttnError(f"a drawing process ended early ({how})", 1) from None
    if "error" in payload:
        raise AttnError(payload["error"], payload["code"])
    return [Path(p) for p in payload["paths"]]


def _end(started: dict[int, int]) -> None:
    """Stop the children still running (another one failed) and wait for them."""
    import signal

    for pid, r in started.items():
        os.close(r)
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for pid in started:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        stop.children.discard(pid)
