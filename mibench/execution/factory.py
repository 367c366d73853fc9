"""From execution settings to an executor: how many workers, threads and devices a run uses.

Workers x threads never exceed the cores: two processes that each use every core
thrash (a model that trains in 8 s alone took 70-150 s beside another busy process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from mibench.config.execution import ExecutionConfig
from mibench.execution.dispatch import SerialExecutor
from mibench.execution.executor import ExecutionError, Executor, StartHook


@dataclass(frozen=True)
class ExecutionPlan:
    """The resolved shape of the execution: what run.json records."""

    executor: str
    workers: int
    threads_per_job: int
    devices: tuple[str, ...]
    jobs_per_device: int

    def describe(self) -> str:
        if self.executor == "serial":
            return f"serial executor, {self.threads_per_job} threads, {self.devices[0]}"
        return (f"{self.executor} executor: {self.workers} workers x {self.threads_per_job} threads on "
                f"{', '.join(self.devices)}" + (f", {self.jobs_per_device} jobs per device"
                                                 if self.jobs_per_device > 1 else ""))


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _devices(config: ExecutionConfig, grid_device: str) -> list[str]:
    wanted = config.devices or grid_device
    if wanted in ("auto", "cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count:
            return [f"cuda:{i}" for i in range(count)]
        if wanted == "cuda":
            raise ExecutionError("devices 'cuda' asked for, but torch sees no CUDA device")
        return ["cpu"]
    return wanted.split(",")


def resolve_execution(config: ExecutionConfig, grid_device: str) -> ExecutionPlan:
    """Fill in the defaults: executor, workers, threads and devices for this machine."""
    devices = _devices(config, grid_device)
    gpus = [d for d in devices if d.startswith("cuda")]
    n_cores = cores()
    executor = config.executor
    if executor == "auto":
        executor = "local" if (gpus or n_cores >= 2) else "serial"
    if executor == "serial":
        threads = config.threads_per_job or torch.get_num_threads()
        return ExecutionPlan("serial", 1, threads, (devices[0],), 1)
    if gpus:
        workers = config.workers or len(gpus) * config.jobs_per_device
        threads = config.threads_per_job or max(1, n_cores // workers)
    else:
        threads = config.threads_per_job or 1
        workers = config.workers or max(1, n_cores // threads)
    if workers * threads > n_cores and not gpus:
        raise ExecutionError(f"{workers} workers x {threads} threads exceed this machine's {n_cores} cores; "
                         "lower --workers or --threads-per-job")
    return ExecutionPlan(executor, workers, threads, tuple(devices), config.jobs_per_device)


def make_executor(plan: ExecutionPlan, config: ExecutionConfig, log: Callable[[str], None],
                  on_start: StartHook | None = None) -> Executor:
    if plan.executor == "serial":
        from mibench.execution.local import set_threads

        set_threads(plan.threads_per_job)
        return SerialExecutor(on_start=on_start, log=log)
    if plan.executor == "local":
        from mibench.execution.local import LocalExecutor

        return LocalExecutor(plan.workers, plan.threads_per_job, list(plan.devices), config.max_retries,
                             on_start=on_start, log=log)
    from mibench.execution.ray_executor import RayExecutor

    return RayExecutor(plan.workers, plan.threads_per_job, list(plan.devices), config.max_retries,
                       address=config.ray_address, on_start=on_start, log=log)
