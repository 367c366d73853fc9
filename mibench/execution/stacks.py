"""Ready training jobs gathered into stacks (``training.stack``), and a stack's answer back into one per model.

The dispatch loop asks :class:`Stacker` for each job it pops: a training job whose
models can stack takes with it up to K - 1 other ready training jobs of one
:func:`~mibench.engine.stacking.stack_key` (the models of a pool, the shadows of a
cell, the seeds of a config), and the executors see one
:class:`~mibench.engine.jobs.TrainStackJob`. :func:`member_results` turns what came
back into one :class:`JobResult` per member, so the scheduler, the run log and the
result rows never see a stack.
"""

from __future__ import annotations

import torch

from mibench.engine.jobs import Job, StackRecord, TrainJob, TrainStackJob
from mibench.engine.stacking import run_refusal, stack_key, stack_limit
from mibench.execution.executor import JobResult, Log
from mibench.execution.scheduler import Scheduler


class Stacker:
    """Gathers stackable training jobs on ``device``; says once per kind of model why one cannot stack."""

    def __init__(self, device: torch.device, log: Log) -> None:
        self.device = device
        self.log = log
        self._keys: dict[str, str] = {}
        self._refusals: dict[str, str | None] = {}

    def _key(self, job: TrainJob) -> str:
        if job.key not in self._keys:
            self._keys[job.key] = stack_key(job.training_run)
        return self._keys[job.key]

    def gather(self, job: Job, scheduler: Scheduler) -> Job:
        """``job``, or a stack of it and other ready training jobs like it (taken from ``scheduler``)."""
        if not isinstance(job, TrainJob):
            return job
        run = job.training_run
        limit = stack_limit(run, self.device)
        if limit <= 1:
            return job
        key = self._key(job)
        if key not in self._refusals:
            self._refusals[key] = refusal = run_refusal(run)
            if refusal is not None:
                self.log(f"training.stack: {run.architecture.label}/{run.defense.label} trains one model at a "
                         f"time: {refusal}")
        if self._refusals[key] is not None:
            return job
        companions = scheduler.pop_matching(lambda other: isinstance(other, TrainJob) and self._key(other) == key,
                                            limit - 1)
        return TrainStackJob((job, *companions)) if companions else job


def member_results(job: Job, result: JobResult, log: Log) -> list[JobResult]:
    """One result per model of ``job`` (``[result]`` for a job that is not a stack)."""
    if not isinstance(job, TrainStackJob):
        return [result]
    share = result.seconds / len(job.members)
    if not result.ok or not isinstance(result.value, StackRecord):  # lost with its worker, or a bug in the stack
        return [JobResult(m.key, m.kind, False, error=m.failure(result.error or "the stack returned no record"),
                          traceback=result.traceback, label=m.label(), seconds=share, worker=result.worker)
                for m in job.members]
    if result.value.fallback:
        log(f"{job.label()}: {result.value.fallback}; trained one at a time")
    return [JobResult(m.key, m.kind, out.record is not None, out.record, error=out.error, traceback=out.traceback,
                      label=m.label(), seconds=share, worker=result.worker,
                      messages=result.messages if i == 0 else [])
            for i, (m, out) in enumerate(zip(job.members, result.value.outcomes))]
