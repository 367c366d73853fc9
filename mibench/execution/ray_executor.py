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

import torch

from mibench.engine.jobs import Job, JobContext
from mibench.engine.layout import RunDirError
from mibench.engine.store import Store
from mibench.execution.dispatch import DispatchExecutor
from mibench.execution.executor import (MODEL_BYTES_KEPT, MODELS_KEPT, Backend, Event, ExecutionError, Finished,
                                        JobResult, Log, Lost, ModelCache, StartHook, run_job)

INSTALL_HINT = "the ray executor needs Ray: pip install 'mibench[ray]'"
PROBE_TIMEOUT_S = 120
_models = ModelCache(MODELS_KEPT, MODEL_BYTES_KEPT)  # per Ray worker process, across its tasks


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


class RayBackend(Backend):
    """Jobs as Ray tasks, at most ``workers`` in flight; a task lost with its worker or node is reported lost."""

    def __init__(self, executor: "RayExecutor") -> None:
        self.executor = executor
        self.started_here = False
        self.in_flight: dict[object, Job] = {}
        self.slot = 0

    def open(self, store: Store, device: torch.device) -> None:
        ex = self.executor
        ray = _ray()
        self.started_here = ex._start_cluster()
        ex._check_shared_store(store)
        self.store_root = str(store.root)
        self.gpu_share = 1.0 / max(1, ex.workers // max(1, len(ex.devices))) if any(
            d.startswith("cuda") for d in ex.devices) else 0.0
        self.task = ray.remote(_run_task).options(num_cpus=ex.threads, num_gpus=self.gpu_share, max_retries=0)

    def free(self) -> bool:
        return len(self.in_flight) < self.executor.workers

    def submit(self, job: Job) -> str:
        ex = self.executor
        dev = "cuda" if self.gpu_share else ex.devices[self.slot % len(ex.devices)]
        self.slot += 1
        self.in_flight[self.task.remote(job, self.store_root, dev, ex.threads)] = job
        return "ray"

    def events(self) -> list[Event]:
        ray = _ray()
        if not self.in_flight:
            return []
        done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=1.0)
        events: list[Event] = []
        for ref in done:
            job = self.in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.TaskCancelledError, ray.exceptions.ObjectLostError) as exc:
                events.append(Lost(job, "ray task", f"lost ({type(exc).__name__})"))
                continue
            for message in result.messages:
                self.executor.log(message)
            events.append(Finished(job, result))
        return events

    def close(self, finished: bool) -> None:
        if self.started_here:
            _ray().shutdown()


class RayExecutor(DispatchExecutor):
    def __init__(self, workers: int, threads: int = 1, devices: list[str] | None = None, max_retries: int = 2,
                 address: str | None = None, on_start: StartHook | None = None, log: Log | None = None) -> None:
        super().__init__(max_retries, on_start, log)
        self.workers = workers
        self.threads = threads
        self.devices = devices or ["cpu"]
        self.address = address

    def backend(self) -> Backend:
        return RayBackend(self)

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
