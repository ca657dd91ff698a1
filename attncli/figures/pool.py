"""A drawing pool: forked worker processes that live as long as a command (a batch, a
`model` run), each fed drawing jobs one at a time, so matplotlib's font and text caches
and attncli's own (frames, glyphs, title measures) stay warm from job to job.

A job is a module-level function and its arguments, pickled through a pipe; what it
returns comes back the same way (paths, notes: never figures). The workers end with the
command: their pipes close, a signal to the parent (Ctrl-C, ``timeout``, ``docker stop``,
a closed terminal) ends them and waits for them before it exits (:mod:`attncli.stop`),
and on Linux a worker whose parent has died is sent SIGTERM by the kernel
(PR_SET_PDEATHSIG). A worker that is stopped removes its temporary file first."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from attncli import stop
from attncli.errors import AttnError

_active: list[Pool] = []  # the pool of the command running, if it made one
_in_worker: list[bool] = []  # set in a worker: never a pool inside a pool


def cores() -> int:
    """Workers worth starting: one per core (at most 4), where fork exists; 1 in a worker."""
    import multiprocessing

    if _in_worker or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def worker_count(panels: int) -> int:
    """Processes worth using for one result's ``panels`` figures: several only for many."""
    return 1 if panels < 4 else cores()


def active() -> Optional[Pool]:
    """The command's pool, when it has one with several workers."""
    return _active[-1] if _active and _active[-1].size > 1 else None


@contextmanager
def session(workers: int) -> Iterator[Optional[Pool]]:
    """A pool for a whole command: jobs of every result go to the same warm workers,
    forked on first use only."""
    if workers < 2 or _in_worker:
        yield None
        return
    pool = Pool(workers)
    _active.append(pool)
    try:
        yield pool
    finally:
        _active.remove(pool)
        pool.close()


def forks_next(workers: int) -> bool:
    """Whether jobs sent now would run in processes forked from this one, now: what this
    process has made (a frame, measured text) is then theirs without being made again."""
    pool = active()
    return not _in_worker and workers > 1 and (pool is None or not pool.workers)


def run_jobs(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]], workers: int) -> list[Any]:
    """``fn(*args)`` for each job, in the command's pool, in a pool for this call only
    (``workers`` > 1), or here; the results in the order of ``jobs``."""
    pool = active()
    if pool is None and workers > 1 and len(jobs) > 1 and not _in_worker:
        with session(workers) as own:
            assert own is not None
            return own.map(jobs)
    if pool is None or len(jobs) < 2:
        return [fn(*args) for fn, args in jobs]
    return pool.map(jobs)


class Pool:
    """``size`` forked workers; :meth:`submit` queues a job and returns a ticket,
    :meth:`result` waits for it (raising the job's :class:`AttnError`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.workers: list[_Worker] = []
        self.queue: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = []  # jobs not yet sent
        self.done: dict[int, tuple[str, Any]] = {}
        self.next = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        ticket, self.next = self.next, self.next + 1
        self.queue.append((ticket, fn, args))  # pickled when sent: one job's copy at a time per worker
        self._start()
        self._dispatch()
        return ticket

    def map(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        tickets = [self.submit(fn, *args) for fn, args in jobs]
        return [self.result(t) for t in tickets]

    def result(self, ticket: int) -> Any:
        import select

        while ticket not in self.done:
            busy = {w.results: w for w in self.workers if w.ticket is not None}
            if not busy:
                raise AttnError("a drawing job was lost", 1)  # a bug: nothing runs it
            ready, _, _ = select.select(list(busy), [], [])
            for fd in ready:
                w = busy[fd]
                self.done[w.ticket] = w.receive()  # type: ignore[index]  # busy: it has one
                w.ticket = None
            self._dispatch()
        kind, value = self.done.pop(ticket)
        if kind == "error":
            raise AttnError(*value)
        return value

    def _start(self) -> None:
        if len(self.workers) < self.size:
            preload()
        while len(self.workers) < self.size:
            self.workers.append(_Worker())

    def _dispatch(self) -> None:
        import pickle

        for w in self.workers:
            if w.ticket is None and self.queue:
                ticket, fn, args = self.queue.pop(0)
                w.send(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
                w.ticket = ticket  # busy only once the job is on its way

    def close(self) -> None:
        """End the workers: their job pipes close (they leave), or, with work still
        running (another job failed), SIGTERM; then wait for them."""
        import signal

        for w in self.workers:
            os.close(w.jobs)
            if w.ticket is not None:
                try:
                    os.kill(w.pid, signal.SIGTERM)
                except OSError:
                    pass
        for w in self.workers:
            os.close(w.results)
            try:
                os.waitpid(w.pid, 0)
            except ChildProcessError:
                pass
            stop.children.discard(w.pid)
        self.workers = []


def preload() -> None:
    """Import what drawing needs before the workers are forked: they share it, where
    each would otherwise import it again (twice the CPU time, the same wall time)."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.colorbar  # noqa: F401
    import matplotlib.figure  # noqa: F401


def _send(fd: int, data: bytes) -> None:
    data = len(data).to_bytes(8, "little") + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read(fd: int, n: int) -> Optional[bytes]:
    """Exactly ``n`` bytes, or None at the end of the pipe."""
    parts, left = [], n
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _receive(fd: int) -> Optional[bytes]:
    head = _read(fd, 8)
    return None if head is None else _read(fd, int.from_bytes(head, "little"))


class _Worker:
    """One forked worker and its two pipes (jobs in, results out)."""

    jobs: int  # the write end of its job pipe
    results: int  # the read end of its result pipe

    def __init__(self) -> None:
        with stop.deferred():  # no signal handler runs between fork and the records
            jobs_r, jobs_w = os.pipe()
            results_r, results_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(jobs_w)
                os.close(results_r)
                for other in _active:  # the pipes of workers forked before this one
                    for w in other.workers:
                        os.close(w.jobs)
                        os.close(w.results)
                _serve(jobs_r, results_w)
            os.close(jobs_r)
            os.close(results_w)
            stop.children.add(pid)
        self.pid, self.jobs, self.results = pid, jobs_w, results_r
        self.ticket: Optional[int] = None

    def send(self, job: bytes) -> None:
        _send(self.jobs, job)

    def receive(self) -> tuple[str, Any]:
        import pickle

        data = _receive(self.results)
        if data is None:
            _, status = os.waitpid(self.pid, 0)
            stop.children.discard(self.pid)
            how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else "an error"
            raise AttnError(f"a drawing process ended early ({how})", 1)
        out: tuple[str, Any] = pickle.loads(data)
        return out


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends this process SIGTERM when its parent dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(143)


def _serve(jobs: int, results: int) -> None:
    """The forked worker (signals still held back): run each job that comes, send back
    what it returns (or its error, in one line), and leave with os._exit when the pipe
    closes (nothing of the parent's, such as its buffered stdout, is run twice)."""
    import pickle

    code = 0
    try:
        stop.in_child()
        _active.clear()
        _in_worker.append(True)
        _die_with_parent(os.getppid())
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop.SIGNALS)
        while True:
            data = _receive(jobs)
            if data is None:
                break
            try:
                fn, args = pickle.loads(data)
                reply: tuple[str, Any] = ("ok", fn(*args))
            except AttnError as exc:
                reply = ("error", (exc.message, exc.code))
            except MemoryError:
                reply = ("error", ("out of memory while drawing", 1))
            except Exception as exc:  # a bug or an unforeseen failure: the parent says it in one line
                reply = ("error", (f"{type(exc).__name__}: {exc}", 1))
            _send(results, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException:
        code = 1
    os._exit(code)
