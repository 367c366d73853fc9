"""The executor seam: something that runs a plan's jobs against a store and yields their results.

An :class:`Executor` gets the whole :class:`~mibench.engine.plan.Plan` (jobs with their
dependencies, grouped into cells) and yields one :class:`JobResult` per job, in any
order its dependencies allow. A job whose dependency failed is not run: it fails with
the dependency's message. Jobs and results are plain picklable data, so an executor
may run jobs in other processes or on other machines that share the run directory.

Every built-in executor is one dispatch loop (:class:`~mibench.execution.dispatch.DispatchExecutor`: finished jobs
read from the store, then the :class:`~mibench.execution.scheduler.Scheduler`'s order,
failure cascades and retries of lost jobs) over a :class:`Backend` that only says how a
job is submitted and how its answer comes back: in this process
(:class:`~mibench.execution.dispatch.SerialExecutor`), in local worker processes, or as Ray tasks.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

import torch

from mibench.engine.access import ModelAccess, open_model
from mibench.engine.jobs import Job, JobContext, error_text
from mibench.engine.models import ModelRef
from mibench.engine.plan import Plan
from mibench.engine.records import Record
from mibench.engine.store import Store

StartHook = Callable[[Job, str], None]  # (job, worker name), called as a job is handed to a worker
Log = Callable[[str], None]
# What a worker keeps open (most recently used first), so a cell's attacks read each model once: a pool of
# M models has M attack jobs that each read all M (an LRU cache smaller than M misses every time).
MODELS_KEPT = 1024
MODEL_BYTES_KEPT = 2 << 30  # and at most 2 GiB of weights and logits (64 ResNet18s do not fit; 64 MLPs do)


class ExecutionError(Exception):
    """Execution settings this machine or cluster cannot honour; the message says why, in one line."""


@dataclass
class JobResult:
    """What became of one job. ``error`` is the one-line message recorded for it; ``traceback``
    is set only for the job that itself raised (not for dependents failed on its account)."""

    key: str
    kind: str
    ok: bool
    value: Record | None = None  # the job's record
    error: str = ""
    traceback: str = ""
    label: str = ""
    seconds: float = 0.0
    worker: str = ""
    messages: list[str] = field(default_factory=list)  # what the store reported in a remote worker


STORE = "store"  # the worker of a result read from the store (a job done by an earlier run)


def stored_results(plan: Plan, store: Store) -> Iterator[JobResult]:
    """A result for every job that an earlier run finished: its record and outputs are stored, and so are its deps'.

    Jobs come dependencies first; nothing runs and no model is opened.
    """
    done: set[str] = set()
    for job in plan.order():
        if not all(d in done for d in job.deps):
            continue
        record = job.stored(store)
        if record is not None:
            done.add(job.key)
            yield JobResult(job.key, job.kind, True, record, label=job.label(), worker=STORE)


def held_bytes(access: ModelAccess) -> int:
    """Memory an open model holds: its weights and, once read, its logits on the pool."""
    tensors = [*getattr(access, "_state", {}).values(), getattr(access, "_logits", None)]
    return sum(t.nbytes for t in tensors if isinstance(t, torch.Tensor))


class ModelCache:
    """Opens each model once and keeps the ``size`` most recently used (None: all) within ``max_bytes``,
    so the jobs of a cell read a model from disk once; an opener for :class:`~mibench.engine.jobs.JobContext`."""

    def __init__(self, size: int | None = None, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._opened: OrderedDict[tuple[str, str], ModelAccess] = OrderedDict()

    def __call__(self, store: Store, ref: ModelRef, device: torch.device) -> ModelAccess:
        key = (str(store.root), ref.key)
        if key in self._opened:
            self._opened.move_to_end(key)
        else:
            self._opened[key] = open_model(store, ref, device)
            self._evict()
        return self._opened[key]

    def _evict(self) -> None:
        """Close the least recently used models beyond ``size`` or ``max_bytes`` (never the newest)."""
        while len(self._opened) > 1 and (
                (self.size is not None and len(self._opened) > self.size)
                or (self.max_bytes is not None and sum(map(held_bytes, self._opened.values())) > self.max_bytes)):
            self._opened.popitem(last=False)


class Executor(ABC):
    """Runs a plan's jobs; yields a result per job as it finishes."""

    @abstractmethod
    def run(self, plan: Plan, store: Store, device: torch.device) -> Iterator[JobResult]:
        """Run every job of ``plan`` (once each) and yield its result."""


def run_job(job: Job, ctx: JobContext, worker: str) -> JobResult:
    """Run one job, turning an exception into a failed result with the job's message."""
    started = time.time()
    try:
        with ctx.store.lock(job.key):  # another run on this directory doing the same job: wait for it
            value = job.run(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded against the job, the run goes on
        return JobResult(job.key, job.kind, False, error=job.failure(error_text(exc)),
                         traceback=traceback.format_exc(), label=job.label(),
                         seconds=time.time() - started, worker=worker)
    return JobResult(job.key, job.kind, True, value, label=job.label(), seconds=time.time() - started, worker=worker)


@dataclass
class Finished:
    """A job's answer came back from its worker."""

    job: Job
    result: JobResult


@dataclass
class Lost:
    """A job was lost with its worker (killed, out of memory, a node gone): it may run again."""

    job: Job
    worker: str
    why: str


Event = Union[Finished, Lost]


class Backend(ABC):
    """How jobs are submitted and awaited: the one thing that differs between executors."""

    def open(self, store: Store, device: torch.device) -> None:
        """Start workers (called once, and only when some job is left to run)."""

    @abstractmethod
    def free(self) -> bool:
        """Whether a job submitted now would start at once."""

    @abstractmethod
    def submit(self, job: Job) -> str:
        """Hand ``job`` to a worker; returns the worker's name."""

    @abstractmethod
    def events(self) -> list[Event]:
        """What came back since the last call, waiting a little for something if nothing has."""

    def close(self, finished: bool) -> None:
        """Stop the workers (at once when not ``finished``: interrupted or failed)."""
