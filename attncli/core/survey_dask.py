"""The same survey on a Dask distributed cluster (``--dask ADDRESS``).

The client streams the corpus and sends partitions of 2^PARTITION_LEVEL chunks; each
worker memory-maps the checkpoint from the same path (the folder must be reachable from
every worker: a shared file system such as NFS, or a copy at the same absolute path) and
returns one merged accumulator per partition, which is exactly a node of the local merge
tree. Partial results come back in corpus order and are merged as locally, so the result
equals the local run's, bit for bit. Dask is imported only here.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, Protocol

from attncli.core.survey import Acc
from attncli.core.survey_run import (
    PARTITION_LEVEL,
    Interrupted,
    Job,
    Merger,
    Progress,
    describe,
    induction_jobs,
    merged,
    run_job,
    run_partition,
)
from attncli.core.survey_source import Info, Spec
from attncli.errors import AttnError

if TYPE_CHECKING:
    from distributed import Client

INSTALL = 'pip install "attncli[dask]"'
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler


class Task(Protocol):
    """A submitted job's ``distributed.Future`` (typed here: its ``cancel`` is not annotated)."""

    def result(self) -> Acc: ...

    def cancel(self) -> object: ...


def client_for(address: str, timeout: Optional[float] = None) -> Client:
    """A connected ``distributed.Client``, or one clear error."""
    try:
        from distributed import Client
    except ImportError:
        raise AttnError(f"--dask needs the dask and distributed packages: {INSTALL}") from None
    connect: Callable[..., Client] = Client  # its __init__ is not annotated
    try:
        return connect(address, timeout=timeout or CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AttnError(f"--dask {address}: cannot reach the scheduler ({reason})") from None


def can_read(folder: Optional[str]) -> Optional[str]:
    """Run on every worker: None if ``folder`` is a readable checkpoint there, else why not."""
    import attncli  # noqa: F401  (fails, and says so, where attncli is not installed)

    if folder is None:
        return None
    path = Path(folder)
    if not (path / "config.json").is_file():
        return f"no {path / 'config.json'}"
    weights = [path / "model.safetensors", path / "model.safetensors.index.json"]
    if not any(p.is_file() for p in weights):
        return f"no {weights[0]}"
    try:
        with open(path / "config.json", "rb"):
            pass
    except OSError as exc:
        return f"cannot open {path / 'config.json'} ({exc.strerror})"
    return None


def check_workers(client: Client, spec: Spec) -> Info:
    """Every worker can see the checkpoint (a tiny task on each); then the model's sizes."""
    try:
        answers = client.run(can_read, spec.model)
    except Exception as exc:  # deserialising on a worker without attncli, a worker lost…
        raise AttnError(
            f"--dask: the workers cannot run attncli ({type(exc).__name__}: {exc}); install attncli on every worker"
        ) from None
    if not answers:
        raise AttnError("--dask: the cluster has no workers")
    bad = {w: why for w, why in answers.items() if why}
    if bad:
        worker, why = sorted(bad.items())[0]
        raise AttnError(
            f"--dask: worker {worker} cannot read the checkpoint: {why}; the folder must be at the same"
            f" absolute path on every worker (a shared file system, or a copy), {len(bad)} of {len(answers)} workers"
        )
    return client.submit(describe, spec, pure=False).result()


def partitions(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    it = iter(jobs)
    while part := list(islice(it, size)):
        yield part


def survey_dask(
    client: Client, spec: Spec, jobs: Iterable[Job], progress: Optional[Progress] = None, level: int = PARTITION_LEVEL
) -> Acc:
    """The merged accumulator, equal to :func:`attncli.core.survey_run.survey_local`'s."""
    merger = Merger(progress)
    window = 2 * max(1, len(client.scheduler_info().get("workers", {}))) + 2
    pending: deque[tuple[list[Job], Task]] = deque()
    tail: Optional[Acc] = None
    try:
        for job in induction_jobs(spec):
            pending.append(([job], client.submit(run_job, spec, job, pure=False)))
        for part in partitions(jobs, 1 << level):
            pending.append((part, client.submit(run_partition, spec, part, pure=False)))
            while len(pending) > window:
                tail = _collect(merger, pending.popleft(), level, tail)
        while pending:
            tail = _collect(merger, pending.popleft(), level, tail)
    except KeyboardInterrupt:
        for _, future in pending:
            future.cancel()
        raise Interrupted(merger.total(tail)) from None
    return merged(merger.total(tail))


def _collect(merger: Merger, item: tuple[list[Job], Task], level: int, tail: Optional[Acc]) -> Optional[Acc]:
    """Push one finished partition; a short one (the corpus's last) becomes the tail."""
    part, future = item
    acc = _result(future)
    last = part[-1]
    if last.induction:
        merger.add(last, acc)
    elif len(part) == 1 << level:
        merger.add(last, acc, level)
    else:
        tail = acc
        if merger.progress is not None:
            merger.progress(last, acc)
    return tail


def _result(future: Task) -> Acc:
    try:
        return future.result()
    except AttnError:
        raise
    except Exception as exc:
        raise AttnError(f"--dask: a task failed on the cluster ({type(exc).__name__}: {exc})", code=1) from None
