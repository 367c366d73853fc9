"""Which job runs next: the dependency bookkeeping every parallel executor shares.

A job becomes ready when every job it depends on has succeeded; a job whose
dependency failed is not run but fails with the dependency's message, and so do its
own dependents. Among ready jobs, those that turn finished models into results
(predictions, attacks) go first, so a cell's rows appear as soon as its models are
ready; then the most expensive training runs, so the longest jobs do not start last
(the cost is :func:`~mibench.engine.estimate.job_cost`, the FLOP estimate
``mibench validate`` prints).
"""

from __future__ import annotations

import heapq
import itertools

from mibench.engine.estimate import job_cost
from mibench.engine.jobs import Job
from mibench.engine.plan import Plan
from mibench.execution.executor import JobResult

KIND_RANK = {"splits": 0, "attack": 1, "predict": 2, "train": 3}


class Scheduler:
    """Ready jobs in priority order; results in, newly ready jobs (and cascaded failures) out."""

    def __init__(self, plan: Plan, costs: dict[str, float] | None = None) -> None:
        self.plan = plan
        self.costs = costs if costs is not None else {k: job_cost(j) for k, j in plan.jobs.items()}
        self.dependents = plan.dependents()
        self.waiting = {k: set(j.deps) for k, j in plan.jobs.items()}
        self.results: dict[str, JobResult] = {}
        self._order = {job.key: i for i, job in enumerate(plan.order())}
        self._ready: list[tuple[int, float, int, str]] = []
        self._counter = itertools.count()
        for key, deps in self.waiting.items():
            if not deps:
                self._push(key)

    def _push(self, key: str) -> None:
        job = self.plan.jobs[key]
        heapq.heappush(self._ready, (KIND_RANK.get(job.kind, 9), -self.costs.get(key, 1.0), self._order[key], key))

    @property
    def total(self) -> int:
        return len(self.plan.jobs)

    def done(self) -> bool:
        return len(self.results) == self.total

    def has_ready(self) -> bool:
        while self._ready and self._ready[0][3] in self.results:  # finished meanwhile (read from the store)
            heapq.heappop(self._ready)
        return bool(self._ready)

    def pop(self) -> Job:
        self.has_ready()
        return self.plan.jobs[heapq.heappop(self._ready)[3]]

    def pop_matching(self, matches, limit: int) -> list[Job]:
        """Take up to ``limit`` ready jobs for which ``matches(job)`` holds, in priority order."""
        self.has_ready()
        taken, kept = [], []
        for entry in sorted(self._ready):
            key = entry[3]
            if len(taken) < limit and key not in self.results and matches(self.plan.jobs[key]):
                taken.append(self.plan.jobs[key])
            else:
                kept.append(entry)
        if taken:
            self._ready = kept
            heapq.heapify(self._ready)
        return taken

    def finish(self, result: JobResult) -> list[JobResult]:
        """Record ``result``; returns the failures it cascades to (its dependents, transitively)."""
        self.results[result.key] = result
        cascaded: list[JobResult] = []
        todo = [result]
        while todo:
            current = todo.pop()
            for dependent in self.dependents.get(current.key, []):
                if dependent in self.results:
                    continue
                if current.ok:
                    self.waiting[dependent].discard(current.key)
                    if not self.waiting[dependent]:
                        self._push(dependent)
                    continue
                job = self.plan.jobs[dependent]
                failed = JobResult(dependent, job.kind, False, error=current.error, label=job.label())
                self.results[dependent] = failed
                cascaded.append(failed)
                todo.append(failed)
        return cascaded


class Retries:
    """Jobs lost with their worker (killed, out of memory, a node gone): run again, at most ``limit`` times."""

    def __init__(self, limit: int, log) -> None:
        self.limit = limit
        self.log = log
        self.deaths: dict[str, int] = {}
        self.queue: list[Job] = []

    def lost(self, job: Job, worker: str, why: str) -> JobResult | None:
        """Queue ``job`` again, or (after ``limit`` losses) the failed result to record."""
        self.deaths[job.key] = self.deaths.get(job.key, 0) + 1
        again = self.deaths[job.key] <= self.limit
        self.log(f"{worker} {why} during {job.label()}; {'running it again' if again else 'giving up'}")
        if again:
            self.queue.append(job)
            return None
        return JobResult(job.key, job.kind, False, label=job.label(), worker=worker,
                         error=job.failure(f"WorkerDied: lost with its worker {self.deaths[job.key]} times ({why})"))
