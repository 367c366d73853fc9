"""The one dispatch loop of every built-in executor, and the serial executor built on it.

:class:`DispatchExecutor` reads finished jobs from the store (a finished rerun starts no
worker), then hands jobs to its :class:`~mibench.execution.executor.Backend` in the
:class:`~mibench.execution.scheduler.Scheduler`'s order, cascades failures and runs lost
jobs again (at most ``max_retries`` times). :class:`SerialExecutor` is that loop with
one in-process worker. Training jobs that can stack (``training.stack``) go to the backend
as one :class:`~mibench.engine.jobs.TrainStackJob` (:mod:`mibench.execution.stacks`).
"""

from __future__ import annotations

import socket
from abc import abstractmethod
from typing import Iterator

import torch

from mibench.engine.jobs import Job, JobContext
from mibench.engine.plan import Plan
from mibench.engine.store import Store
from mibench.execution.executor import (MODEL_BYTES_KEPT, MODELS_KEPT, Backend, Event, Executor, Finished, JobResult,
                                        Log, Lost, ModelCache, StartHook, run_job, stored_results)
from mibench.execution.scheduler import Retries, Scheduler
from mibench.execution.stacks import Stacker, member_results


class DispatchExecutor(Executor):
    """The dispatch loop every built-in executor shares; subclasses give the :class:`Backend`."""

    def __init__(self, max_retries: int = 2, on_start: StartHook | None = None, log: Log | None = None) -> None:
        self.max_retries = max_retries
        self.on_start = on_start
        self.log = log or (lambda message: None)

    @abstractmethod
    def backend(self) -> Backend:
        """A fresh backend for one run."""

    def run(self, plan: Plan, store: Store, device: torch.device) -> Iterator[JobResult]:
        scheduler = Scheduler(plan)
        for result in stored_results(plan, store):  # before any worker starts: a finished rerun starts none
            yield result
            yield from scheduler.finish(result)
        if scheduler.done():
            return
        backend = self.backend()
        retries = Retries(self.max_retries, self.log)
        stacker = Stacker(device, self.log)
        finished = False
        try:
            backend.open(store, device)
            while not scheduler.done():
                while backend.free() and (retries.queue or scheduler.has_ready()):
                    job = retries.queue.pop() if retries.queue else stacker.gather(scheduler.pop(), scheduler)
                    worker = backend.submit(job)
                    if self.on_start is not None:
                        self.on_start(job, worker)
                for event in backend.events():
                    if isinstance(event, Lost):
                        result = retries.lost(event.job, event.worker, event.why)
                        if result is None:
                            continue
                    else:
                        result = event.result
                    for single in member_results(event.job, result, self.log):
                        yield single
                        yield from scheduler.finish(single)
            finished = True
        finally:
            backend.close(finished)


class InProcessBackend(Backend):
    """One worker: this process, running each job as it is asked for the answer."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._job: Job | None = None
        self._ctx: JobContext | None = None

    def open(self, store: Store, device: torch.device) -> None:
        self._ctx = JobContext(store, device, ModelCache(MODELS_KEPT, MODEL_BYTES_KEPT))

    def free(self) -> bool:
        return self._job is None

    def submit(self, job: Job) -> str:
        self._job = job
        return self.worker

    def events(self) -> list[Event]:
        job, self._job = self._job, None
        if job is None or self._ctx is None:
            return []
        return [Finished(job, run_job(job, self._ctx, self.worker))]


class SerialExecutor(DispatchExecutor):
    """Every job in this process, one at a time, in the scheduler's order."""

    def __init__(self, on_start: StartHook | None = None, log: Log | None = None) -> None:
        super().__init__(0, on_start, log)
        self.worker = f"{socket.gethostname()}:serial"

    def backend(self) -> Backend:
        return InProcessBackend(self.worker)
