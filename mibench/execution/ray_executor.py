"""Jobs as Ray tasks, on an existing cluster (``--ray-address``) or on a local one started for the run.

Each job is a task that asks Ray for ``threads`` CPUs (and, on a GPU run, a share
of one GPU: 1 / jobs_per_device), so Ray packs tasks onto nodes by their resources.
Tasks read and write the run directory directly, so it must live on storage that
every node sees (NFS, a shared volume): before any job runs, one probe task per node
checks that it sees the run's store, and a node that does not stops the run with one
line naming it. A task lost with its worker or node is submitted again (at most
``max_retries`` times); the job's file lock died with its holder.

Install with ``pip install 'mibench[ray]'``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, Iterator

import torch

from mibench.engine.jobs import Job, JobContext
from mibench.engine.layout import RunDirError
from mibench.engine.plan import Plan
from mibench.engine.store import Store
from mibench.execution.executor import ExecutionError, Executor, JobResult, ModelCache, run_job, stored_results
from mibench.execution.scheduler import Retries, Scheduler

INSTALL_HINT = "the ray executor needs Ray: pip install 'mibench[ray]'"
PROBE_TIMEOUT_S = 120
MODELS_KEPT = 8
_models = ModelCache(MODELS_KEPT)  # per Ray worker process, across its tasks


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ExecutionError(INSTALL_HINT) from None
    return ray


def _run_task(job: Job, store_root: str, device: str, threads: int) -> JobResult:
    """The body of one Ray task: run ``job`` against the shared store with ``threads`` CPU threads."""
    from mibench.engine.devices import resolve_device
    from mibench.execution.local import set_threads

    set_threads(threads)
    messages: list[str] = []
    store = Store(store_root, report=messages.append)

    name = f"{socket.gethostname()}:ray-{os.getpid()}"
    result = run_job(job, JobContext(store, resolve_device(device), _models), name)
    result.messages = messages
    return result


def _probe(store_root: str) -> tuple[str, bool]:
    return socket.gethostname(), os.path.isfile(os.path.join(store_root, ".probe"))


class RayExecutor(Executor):
    def __init__(self, workers: int, threads: int = 1, devices: list[str] | None = None, max_retries: int = 2,
                 address: str | None = None, on_start: Callable | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.workers = workers
        self.threads = threads
        self.devices = devices or ["cpu"]
        self.max_retries = max_retries
        self.address = address
        self.on_start = on_start
        self.log = log or (lambda message: None)

    def _start_cluster(self) -> bool:
        """Connect to the cluster, or start a local one; True when this executor started it."""
        ray = _ray()
        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
            return False
        gpus = sum(1 for d in self.devices if d.startswith("cuda"))
        ray.init(num_cpus=max(self.workers * self.threads, 1), num_gpus=gpus, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        return True

    def _check_shared_store(self, store: Store) -> None:
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        store.root.mkdir(parents=True, exist_ok=True)
        (store.root / ".probe").write_text("every node must see this file\n")
        probe = ray.remote(num_cpus=0)(_probe)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {n["NodeManagerAddress"]: probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(str(store.root))
            for n in nodes}
        ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        if pending:
            slow = [addr for addr, ref in refs.items() if ref in pending]
            raise RunDirError(f"ray nodes {', '.join(slow)} did not answer within {PROBE_TIMEOUT_S} s")
        for address, ref in refs.items():
            host, sees = ray.get(ref)
            if not sees:
                raise RunDirError(f"ray node {host} ({address}) cannot see the run directory {store.root.parent}; "
                                  "put it on storage every node mounts at the same path")

    def run(self, plan: Plan, store: Store, device: torch.device) -> Iterator[JobResult]:
        ray = _ray()
        started_here = self._start_cluster()
        try:
            self._check_shared_store(store)
            gpu_share = 1.0 / max(1, self.workers // max(1, len(self.devices))) if any(
                d.startswith("cuda") for d in self.devices) else 0.0
            task = ray.remote(_run_task).options(num_cpus=self.threads, num_gpus=gpu_share, max_retries=0)
            scheduler = Scheduler(plan)
            for result in stored_results(plan, store):
                yield result
                yield from scheduler.finish(result)
            in_flight: dict[object, Job] = {}
            retries = Retries(self.max_retries, self.log)
            slot = 0
            while not scheduler.done():
                while len(in_flight) < self.workers and (retries.queue or scheduler.has_ready()):
                    job = retries.queue.pop() if retries.queue else scheduler.pop()
                    dev = "cuda" if gpu_share else self.devices[slot % len(self.devices)]
                    slot += 1
                    if self.on_start is not None:
                        self.on_start(job, "ray")
                    in_flight[task.remote(job, str(store.root), dev, self.threads)] = job
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in done:
                    job = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.TaskCancelledError, ray.exceptions.ObjectLostError) as exc:
                        lost = retries.lost(job, "ray task", f"lost ({type(exc).__name__})")
                        if lost is None:
                            continue
                        result = lost
                    for message in result.messages:
                        self.log(message)
                    yield result
                    yield from scheduler.finish(result)
        finally:
            if started_here:
                ray.shutdown()
