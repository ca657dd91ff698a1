"""Running a survey: the corpus streamed in fixed-size chunks, each chunk turned into an
accumulator by a worker (in this process, in local worker processes, or on a Dask
cluster), the accumulators merged along a fixed tree in corpus order.

Chunks hold :data:`CHUNK` lines whatever the number of workers, and :class:`Tree` merges
them in a fixed order, so 1, 2 or 32 workers, local or on a cluster, give the same bits.
At most a few chunks per worker are in flight: memory stays flat however long the corpus.

Inside a chunk, the windows are sorted by length and cut into groups of similar length
(:func:`groups`, a function of the lengths alone, so the same chunk always gives the same
groups and the same bits); each group runs as one batched forward pass.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, ContextManager, Iterable, Iterator, Optional, cast

from attncli.core.survey import Acc, Group, Seq, Tree
from attncli.core.survey_source import Info, ModelSource, Source, Spec, source
from attncli.core.tokenize import Tokens
from attncli.errors import AttnError

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult, Pool

CHUNK = 32  # lines per chunk: fixed, so the merge tree does not depend on the workers
INDUCTION_CHUNK = 8  # induction sequences per job
PARTITION_LEVEL = 1  # a Dask partition holds 2^1 chunks (64 lines, ~1 s of work) and returns one tree node
SLACK = 1.5  # a group's padded attention (B·n², n its longest) is at most this × the sum of its n_b²
CELLS = 1 << 17  # and at most this many B·n² cells (a group of long windows stays small)

Line = tuple[str, str]  # (where: "file line k", text)


@dataclass
class Job:
    """Lines of the corpus (``lines``), or induction sequences first … first + count − 1."""

    lines: list[Line] = field(default_factory=list)
    first: int = 0
    count: int = 0
    done_bytes: int = 0  # how far into the corpus this chunk ends (for the ETA)

    @property
    def induction(self) -> bool:
        return not self.lines


def describe(spec: Spec) -> Info:
    return source(spec).info()


def induction_length(spec: Spec) -> int:
    src = source(spec)
    return min(spec.induction_len, (src.limit - src.extra) // 2)


Window = tuple[str, Tokens]  # (where, tokens)


def run_job(spec: Spec, job: Job) -> Acc:
    """One chunk's accumulator (runs in a worker)."""
    src = source(spec)
    acc = Acc.zeros(src.layers, src.heads)
    if job.induction:
        T = induction_length(spec)
        made = [src.induction(index, T) for index in range(job.first, job.first + job.count)]
        named = [(f"induction sequence {job.first + k + 1}", t) for k, (t, _) in enumerate(made)]
        add_windows(acc, src, named, (made[0][1], T))
        acc.tally("induction_sequences", job.count)
        return acc
    windows: list[Window] = []
    for where, text in job.lines:
        try:
            windows += [(where, w) for w in line_windows(acc, src, where, text)]
        except AttnError as exc:
            raise AttnError(f"{where}: {exc.message}", exc.code) from None
    add_windows(acc, src, windows)
    return acc


def line_windows(acc: Acc, src: Source, where: str, text: str) -> list[Tokens]:
    """The windows of one line, tallied."""
    windows, n = src.windows(text)
    if n == 0:
        acc.tally("empty_lines")
        return []
    acc.tally("sentences")
    acc.tally("tokens", n)
    if len(windows) > 1:
        acc.tally("long_lines")
        acc.first_long = acc.first_long or (where, n, src.limit)
    acc.tally("windows", len(windows))
    return windows


def groups(lengths: list[int]) -> list[list[int]]:
    """Indices of the windows, sorted by length (ties in order) and cut into groups of
    similar length: a group grows while its padded attention B·n² stays within
    :data:`SLACK` × Σ n_b² and :data:`CELLS`."""
    out: list[list[int]] = []
    group: list[int] = []
    cells = 0
    for k in sorted(range(len(lengths)), key=lambda k: (lengths[k], k)):
        n2 = lengths[k] ** 2  # the longest so far: windows come shortest first
        padded = (len(group) + 1) * n2
        if group and (padded > SLACK * (cells + n2) or padded > CELLS):
            out.append(group)
            group, cells = [], 0
        group.append(k)
        cells += n2
    return out + [group] if group else out


def add_windows(acc: Acc, src: Source, windows: list[Window], induction: Optional[tuple[int, int]] = None) -> None:
    """Add the windows' statistics: one pass for all of them, attention a group of similar
    length at a time (induction sequences, all of one length with their repeat at
    ``induction`` = (start, T), count for the induction score only)."""
    parts = [[windows[k] for k in group] for group in groups([len(t) for _, t in windows])]
    try:
        add_groups(acc, src, [[t for _, t in part] for part in parts], induction)
    except AttnError as exc:
        for where, tokens in windows:  # which window: each alone, into a scratch accumulator
            try:
                add_groups(Acc.zeros(*acc.shape), src, [[tokens]], induction)
            except AttnError as alone:
                raise AttnError(f"{where}: {alone.message}", alone.code) from None
        raise AttnError(f"{windows[0][0]}: {exc.message}", exc.code) from None


def add_groups(acc: Acc, src: Source, parts: list[list[Tokens]], induction: Optional[tuple[int, int]] = None) -> None:
    """The statistics of groups of windows run as one pass (for each layer the groups are
    added in order: the same sums as group after group)."""
    stats = [Group([Seq(w.tokens, w.special, w.ids, src.causal) for w in part], induction) for part in parts]
    summed = isinstance(src, ModelSource)  # a checkpoint's A' is a softmax's: its columns sum to 1
    src.attend(parts, lambda g, layer, A_prime: stats[g].add_layer(acc, layer, A_prime, True, summed))  # A' is ours
    for group in stats:
        group.add_counts(acc)


def run_partition(spec: Spec, jobs: list[Job]) -> Acc:
    """Several chunks merged along the same tree as locally (a Dask task)."""
    tree = Tree()
    for job in jobs:
        tree.push(run_job(spec, job))
    return merged(tree.total())


def merged(acc: Optional[Acc]) -> Acc:
    """The total of a run, which always merges at least one job (a partition is never
    empty; a survey refuses an empty corpus before it starts)."""
    assert acc is not None, "no job was merged"
    return acc


def induction_jobs(spec: Spec) -> list[Job]:
    n = spec.induction
    return [Job(first=k, count=min(INDUCTION_CHUNK, n - k)) for k in range(0, n, INDUCTION_CHUNK)]


# ---------------------------------------------------------------- reading the corpus


def check_corpus(paths: list[str]) -> None:
    """Every named file exists (before any work starts)."""
    for p in paths:
        if p != "-" and not Path(p).is_file():
            reason = "is a folder" if Path(p).is_dir() else "no such file"
            raise AttnError(f"{p}: {reason} (CORPUS is text files, one sentence or document per line, or - for stdin)")


def corpus_size(paths: list[str]) -> Optional[int]:
    """Bytes in all the files, or None when stdin is among them (no ETA then)."""
    if "-" in paths:
        return None
    return sum(Path(p).stat().st_size for p in paths)


def read_lines(paths: list[str], encoding: str = "utf-8") -> Iterator[tuple[str, str, int]]:
    """(where, text, bytes read so far) for every non-empty line, one line at a time."""
    done = 0
    for p in paths:
        name = "stdin" if p == "-" else p
        with _open(p) as fh:
            for number, raw in enumerate(fh, start=1):
                done += len(raw)
                try:
                    text = raw.decode(encoding).rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise AttnError(
                        f"{name} line {number}: not valid {encoding} (byte {raw[exc.start]:#04x} at column"
                        f" {exc.start + 1})"
                    ) from None
                if text.strip():
                    yield f"{name} line {number}", text, done


def _open(p: str) -> ContextManager[BinaryIO]:
    if p == "-":
        stream = cast(BinaryIO, sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin)
        return _NoClose(stream)
    try:
        return open(p, "rb")
    except OSError as exc:
        raise AttnError(f"{p}: {exc.strerror}") from None


class _NoClose:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None


def chunks(lines: Iterable[tuple[str, str, int]]) -> Iterator[Job]:
    """Consecutive jobs of :data:`CHUNK` lines."""
    batch: list[Line] = []
    done = 0
    for where, text, done in lines:
        batch.append((where, text))
        if len(batch) == CHUNK:
            yield Job(lines=batch, done_bytes=done)
            batch = []
    if batch:
        yield Job(lines=batch, done_bytes=done)


def nonempty(jobs: Iterator[Job]) -> Iterator[Job]:
    """``jobs``, refusing an empty corpus before any work starts."""
    try:
        first = next(jobs)
    except StopIteration:
        raise AttnError("the corpus is empty: give text files with one sentence or document per line") from None
    yield first
    yield from jobs


# ---------------------------------------------------------------- running


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a survey, carrying what was merged so far."""

    def __init__(self, partial: Optional[Acc]) -> None:
        super().__init__()
        self.partial = partial


Progress = Callable[[Job, Acc], None]


@dataclass
class Merger:
    """The two trees (induction sequences, corpus chunks) and the progress callback."""

    progress: Optional[Progress] = None
    induction: Tree = field(default_factory=Tree)
    corpus: Tree = field(default_factory=Tree)

    def add(self, job: Job, acc: Acc, level: int = 0) -> None:
        (self.induction if job.induction else self.corpus).push(acc, level)
        if self.progress is not None:
            self.progress(job, acc)

    def total(self, tail: Optional[Acc] = None) -> Optional[Acc]:
        corpus, induction = self.corpus.total(tail), self.induction.total()
        if corpus is None or induction is None:
            return corpus or induction
        return corpus.merge(induction)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does


_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_AVX512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def worker_environment() -> dict[str, str]:
    """What a survey worker process runs with: one BLAS/OpenMP thread (parallelism comes
    from processes), no tokenizer threads, and OpenBLAS's AVX-512 kernels on an x86 CPU
    that has AVX-512 (``OPENBLAS_CORETYPE=SKYLAKEX``: OpenBLAS falls back to its AVX2
    "Haswell" kernels on CPUs it does not know, such as AMD Zen 5, and runs float32
    products ~1.8× slower there). A core type already set is kept. Give Dask workers the
    same variables for the same bits as a local run."""
    env = {k: "1" for k in _ONE_THREAD}
    env["TOKENIZERS_PARALLELISM"] = "false"
    if "OPENBLAS_CORETYPE" not in os.environ and _AVX512 <= cpu_flags():
        env["OPENBLAS_CORETYPE"] = "SKYLAKEX"
    return env


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _pool(workers: int) -> Pool:
    """Worker processes (spawned: no inherited threads) with :func:`worker_environment`."""
    import multiprocessing

    env = worker_environment()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def same_kernels() -> bool:
    """Whether this process's OpenBLAS runs the kernels a worker process would get from
    :func:`worker_environment` (then a chunk gives the same bits here as in a worker:
    the passes run one BLAS thread either way)."""
    from attncli.core import blas

    wanted = worker_environment().get("OPENBLAS_CORETYPE")
    if wanted is None:  # the worker inherits this process's setting, or chooses as this process did
        return True
    have = blas.core()
    return have is not None and have.lower() == wanted.lower()


def _in_order(spec: Spec, jobs: Iterable[Job], workers: int) -> Iterator[tuple[Job, Acc]]:
    """(job, accumulator) in job order, computed by ``workers`` processes with at most
    2 × workers + 2 jobs in flight (0: in this process; 1: in this process too when its
    BLAS kernels are a worker's, :func:`same_kernels`: no second process to start, import
    and load the model in). Worker processes run one BLAS thread each: many small products
    in parallel processes beat threads within each."""
    if workers < 1 or (workers == 1 and same_kernels()):
        for job in jobs:
            yield job, run_job(spec, job)
        return
    pool = _pool(workers)
    try:
        pending: deque[tuple[Job, AsyncResult[Acc]]] = deque()
        for job in jobs:
            pending.append((job, pool.apply_async(run_job, (spec, job))))
            if len(pending) > 2 * workers + 2:
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()
        pool.close()
    finally:
        pool.terminate()


def survey_local(spec: Spec, jobs: Iterable[Job], workers: int = 0, progress: Optional[Progress] = None) -> Acc:
    """The merged accumulator of the induction jobs and the corpus ``jobs``."""
    merger = Merger(progress)
    try:
        for job, acc in _in_order(spec, chain(induction_jobs(spec), jobs), workers):
            merger.add(job, acc)
    except KeyboardInterrupt:
        raise Interrupted(merger.total()) from None
    return merged(merger.total())
