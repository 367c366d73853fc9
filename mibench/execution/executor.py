"""The executor seam: something that runs a plan's jobs against a store and yields their results.

An :class:`Executor` gets the whole :class:`~mibench.engine.plan.Plan` (jobs with their
dependencies, grouped into cells) and yields one :class:`JobResult` per job, in any
order its dependencies allow. A job whose dependency failed is not run: it fails with
the dependency's message. Jobs and results are plain picklable data, so an executor
may run jobs in other processes or on other machines that share the run directory.

:class:`SerialExecutor` runs the cells one after another in this process, each cell's
jobs dependencies first, and opens each model once per cell.
"""

from __future__ import annotations

import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from mibench.engine.access import ModelAccess, open_model
from mibench.engine.jobs import Job, JobContext
from mibench.engine.models import ModelRef
from mibench.engine.plan import Plan
from mibench.engine.records import Record
from mibench.engine.store import Store

StartHook = Callable[[Job], None]


class ExecutionError(Exception):
    """Execution settings this machine or cluster cannot honour; the message says why, in one line."""


def error_text(exc: BaseException) -> str:
    """An exception as one line: its type and message, whitespace folded, at most 500 characters."""
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


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
    for cell in plan.cells:
        for job in plan.cell_jobs(cell):
            if job.key in done or not all(d in done for d in job.deps):
                continue
            record = job.stored(store)
            if record is not None:
                done.add(job.key)
                yield JobResult(job.key, job.kind, True, record, label=job.label(), worker=STORE)


class ModelCache:
    """Opens each model once and keeps the ``size`` most recently used (None: all), so the jobs of a
    cell read a model from disk once; an opener for :class:`~mibench.engine.jobs.JobContext`."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._opened: OrderedDict[tuple[str, str], ModelAccess] = OrderedDict()

    def __call__(self, store: Store, ref: ModelRef, device: torch.device) -> ModelAccess:
        key = (str(store.root), ref.key)
        if key in self._opened:
            self._opened.move_to_end(key)
        else:
            self._opened[key] = open_model(store, ref, device)
            while self.size is not None and len(self._opened) > self.size:
                self._opened.popitem(last=False)
        return self._opened[key]


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


class SerialExecutor(Executor):
    """Every job in this process, cell after cell; each model is read from disk once per cell."""

    def __init__(self, on_start: StartHook | None = None) -> None:
        self.on_start = on_start
        self.worker = f"{socket.gethostname()}:serial"

    def run(self, plan: Plan, store: Store, device: torch.device) -> Iterator[JobResult]:
        done: dict[str, JobResult] = {}
        for result in stored_results(plan, store):
            done[result.key] = result
            yield result
        for cell in plan.cells:
            ctx = JobContext(store, device, ModelCache())  # a fresh cache per cell
            for job in plan.cell_jobs(cell):
                if job.key in done:
                    continue
                failed = next((done[d] for d in job.deps if not done[d].ok), None)
                if failed is not None:
                    result = JobResult(job.key, job.kind, False, error=failed.error, label=job.label(),
                                       worker=self.worker)
                else:
                    if self.on_start is not None:
                        self.on_start(job)
                    result = run_job(job, ctx, self.worker)
                done[job.key] = result
                yield result
