"""The execution core with fake jobs (no training): the scheduler's order and failure cascade, one dispatch loop.

Every built-in executor is :class:`~mibench.execution.executor.DispatchExecutor` over a
backend; here a serial one and a fake backend that loses jobs drive the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from mibench.engine.jobs import Job
from mibench.engine.plan import Plan
from mibench.engine.records import Record, SplitsRecord, save_record
from mibench.engine.store import Store
from mibench.execution.dispatch import DispatchExecutor, SerialExecutor
from mibench.execution.executor import Backend, Finished, Lost, run_job
from mibench.execution.scheduler import Scheduler

RAN: list[str] = []


@dataclass(frozen=True)
class Fake(Job):
    kind: ClassVar[str] = "train"
    name: str = ""
    needs: tuple[str, ...] = ()
    fail: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def deps(self) -> tuple[str, ...]:
        return self.needs

    def label(self) -> str:
        return self.name

    def compute(self, ctx) -> Record:
        RAN.append(self.key)
        if self.fail:
            raise ValueError(f"{self.name} broke")
        return SplitsRecord(len(RAN))


@dataclass(frozen=True)
class FakeSplits(Fake):
    kind: ClassVar[str] = "splits"


@dataclass(frozen=True)
class FakePredict(Fake):
    kind: ClassVar[str] = "predict"


@dataclass(frozen=True)
class FakeAttack(Fake):
    kind: ClassVar[str] = "attack"


def plan_of(*jobs: Job) -> Plan:
    return Plan({j.key: j for j in jobs}, [])


@pytest.fixture(autouse=True)
def _clear():
    RAN.clear()


def drain(scheduler: Scheduler, fail: set[str] = frozenset()) -> list[str]:
    """Pop and finish jobs one at a time (as one worker would); the keys in the order they ran."""
    from mibench.execution.executor import JobResult

    order = []
    while scheduler.has_ready():
        job = scheduler.pop()
        order.append(job.key)
        scheduler.finish(JobResult(job.key, job.kind, job.key not in fail, error="x" if job.key in fail else ""))
    return order


def test_ready_jobs_go_by_kind_then_cost_then_plan_order():
    plan = plan_of(FakeSplits("s"), Fake("cheap", ("splits:s",)), Fake("costly", ("splits:s",)),
                   FakePredict("p", ("train:cheap",)), FakeAttack("a", ("predict:p",)))
    costs = {"train:cheap": 1.0, "train:costly": 100.0}
    order = drain(Scheduler(plan, costs))
    # the costliest training first; a finished model's prediction and attack before the next training
    assert order == ["splits:s", "train:costly", "train:cheap", "predict:p", "attack:a"]
    plan = plan_of(FakeSplits("s"), Fake("one", ("splits:s",)), Fake("two", ("splits:s",)),
                   FakePredict("p", ("train:one",)))
    assert drain(Scheduler(plan, {})) == ["splits:s", "train:one", "predict:p", "train:two"]


def test_a_failure_cascades_to_every_dependent_and_nothing_else():
    plan = plan_of(Fake("t1"), Fake("t2"), FakePredict("p1", ("train:t1",)), FakePredict("p2", ("train:t2",)),
                   FakeAttack("a1", ("predict:p1", "predict:p2")), FakeAttack("a2", ("predict:p2",)))
    scheduler = Scheduler(plan, {})
    from mibench.execution.executor import JobResult

    assert scheduler.pop().key == "train:t1"
    cascaded = scheduler.finish(JobResult("train:t1", "train", False, error="t1 broke"))
    assert sorted(r.key for r in cascaded) == ["attack:a1", "predict:p1"]
    assert all(r.error == "t1 broke" and not r.ok for r in cascaded)
    assert drain(scheduler) == ["train:t2", "predict:p2", "attack:a2"]
    assert scheduler.done()


def test_the_serial_executor_is_the_dispatch_loop_with_one_in_process_worker(tmp_path):
    plan = plan_of(FakeSplits("s"), Fake("bad", ("splits:s",), fail=True), Fake("good", ("splits:s",)),
                   FakePredict("p", ("train:bad",)), FakePredict("q", ("train:good",)))
    started = []
    executor = SerialExecutor(on_start=lambda job, worker: started.append((job.key, worker)))
    assert isinstance(executor, DispatchExecutor)
    results = {r.key: r for r in executor.run(plan, Store(tmp_path), torch.device("cpu"))}
    assert set(results) == set(plan.jobs)  # one result per job
    assert RAN == ["splits:s", "train:bad", "train:good", "predict:q"]  # the dependent of a failure never runs
    assert results["predict:p"].error == "ValueError: bad broke" and not results["predict:p"].ok
    assert not results["predict:p"].traceback and "ValueError" in results["train:bad"].traceback
    assert [k for k, _ in started] == RAN and all(w.endswith(":serial") for _, w in started)


def test_finished_jobs_are_read_from_the_store_and_start_no_backend(tmp_path):
    store = Store(tmp_path)
    plan = plan_of(FakeSplits("s"), Fake("t", ("splits:s",)))
    for job in plan.jobs.values():
        save_record(store, job.key, SplitsRecord(7))

    class NoBackend(DispatchExecutor):
        def backend(self):
            raise AssertionError("a finished plan starts no worker")

    results = list(NoBackend().run(plan, store, torch.device("cpu")))
    assert [r.worker for r in results] == ["store", "store"] and RAN == []


class Flaky(Backend):
    """Loses the first ``losses`` submissions of each job, as a killed worker would."""

    def __init__(self, losses: int, store: Store) -> None:
        self.losses, self.store = losses, store
        self.seen: dict[str, int] = {}
        self.pending: list = []

    def free(self) -> bool:
        return not self.pending

    def submit(self, job) -> str:
        self.pending.append(job)
        return "flaky"

    def events(self):
        job = self.pending.pop()
        self.seen[job.key] = self.seen.get(job.key, 0) + 1
        if self.seen[job.key] <= self.losses:
            return [Lost(job, "flaky", "died (exit code -9)")]
        from mibench.engine.jobs import JobContext

        return [Finished(job, run_job(job, JobContext(self.store, torch.device("cpu")), "flaky"))]


@pytest.mark.parametrize("losses, ok", [(2, True), (3, False)])
def test_a_lost_job_runs_again_up_to_max_retries(tmp_path, losses, ok):
    store = Store(tmp_path)
    log: list[str] = []

    class FlakyExecutor(DispatchExecutor):
        def backend(self):
            self.flaky = Flaky(losses, store)
            return self.flaky

    executor = FlakyExecutor(max_retries=2, log=log.append)
    plan = plan_of(Fake("t"), FakePredict("p", ("train:t",)))
    results = {r.key: r for r in executor.run(plan, store, torch.device("cpu"))}
    assert executor.flaky.seen["train:t"] == min(losses + 1, 3)
    assert results["train:t"].ok is ok and results["predict:p"].ok is ok
    if not ok:
        assert results["train:t"].error == "WorkerDied: lost with its worker 3 times (died (exit code -9))"
        assert results["predict:p"].error == results["train:t"].error  # cascaded, not run
        assert log[-1] == "flaky died (exit code -9) during t; giving up"
    else:
        assert log == ["flaky died (exit code -9) during t; running it again"] * 2 + [
            "flaky died (exit code -9) during p; running it again"] * 2
