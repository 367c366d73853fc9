"""A pool of worker processes on this machine, each running one job at a time with T threads.

Workers are forked from a forkserver that imported torch and the engine once (no
fork of a process that already runs torch threads; ``spawn`` where there is no
forkserver), pinned to their thread count and device,
and fed jobs in the :class:`~mibench.execution.scheduler.Scheduler`'s order. Each
keeps the models it opened (a few, most recent) so a cell's attacks read them once.

A worker that dies mid-job (killed, out of memory) costs that job only: the job goes
back in the queue, a fresh worker takes the dead one's place, and the per-job file
lock the dead worker held is released by the OS. A job that dies ``max_retries``
times fails with that message. A job that fails by raising is not retried.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import time
from dataclasses import dataclass

import torch

from mibench.engine.jobs import Job, JobContext
from mibench.engine.store import Store
from mibench.execution.dispatch import DispatchExecutor
from mibench.execution.executor import (MODEL_BYTES_KEPT, MODELS_KEPT, Backend, Event, Finished, Log, Lost,
                                        ModelCache, StartHook, run_job)


PRELOAD = ["torch", "numpy", "mibench.engine.jobs", "mibench.execution.executor", "mibench.sdk.trainer"]


def _context():
    """A forkserver: one fresh process imports torch and the engine once, and every worker is forked
    from it, so starting a worker costs milliseconds, not a torch import; nothing that runs
    threads is ever forked (the server only imports). ``spawn`` where there is no forkserver."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in this process (torch's intra-op pool and the BLAS libraries)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)


def _die_with(parent: int, interval: float = 0.5) -> None:
    """End this worker as soon as process ``parent`` (the run) is gone, however it ended.

    A worker's own parent is the forkserver, so the kernel's parent-death signal alone
    would not fire when the run is killed (kill -9, OOM): a daemon thread watches the
    run's pid and ends the worker at once, with the job it was running; that job's lock
    goes with it and a rerun does it again.
    """
    import threading

    def watch() -> None:
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pid reused by another user's process: ours is gone
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="mibench-watchdog", daemon=True).start()


def _worker(name: str, threads: int, device: str, store_root: str, jobs: mp.Queue, results: mp.Queue,
            environ: dict[str, str], parent: int = 0) -> None:
    if parent:
        _die_with(parent)
    os.environ.clear()  # the run's environment, not the forkserver's (started earlier, perhaps by another run)
    os.environ.update(environ)
    set_threads(threads)
    from mibench.engine.devices import resolve_device

    dev = resolve_device(device)
    store = Store(store_root, report=lambda message: results.put(("log", name, message)))
    ctx = JobContext(store, dev, ModelCache(MODELS_KEPT, MODEL_BYTES_KEPT))
    results.put(("ready", name, torch.get_num_threads()))
    while True:
        job = jobs.get()
        if job is None:
            return
        results.put(("result", name, run_job(job, ctx, name)))


@dataclass
class _Worker:
    name: str
    device: str
    process: mp.Process
    jobs: mp.Queue
    job: Job | None = None
    started: float = 0.0
    ready: bool = False


class LocalBackend(Backend):
    """Worker processes fed through queues; a dead worker is replaced and its job reported lost."""

    def __init__(self, executor: "LocalExecutor") -> None:
        self.executor = executor
        self.workers: list[_Worker] = []
        self.failed_starts = 0
        self.store: Store | None = None
        self.results: mp.Queue | None = None

    def open(self, store: Store, device: torch.device) -> None:
        self.store = store
        self.results = self.executor._context.Queue()
        self.workers = [self._start(i) for i in range(self.executor.workers)]

    def _start(self, index: int) -> _Worker:
        ex = self.executor
        name = f"{ex._host}:w{index}"
        device = ex.devices[index % len(ex.devices)]
        jobs = ex._context.Queue()
        process = ex._context.Process(target=_worker, name=name, daemon=True,
                                      args=(name, ex.threads, device, str(self.store.root), jobs, self.results,
                                            dict(os.environ), os.getpid()))
        process.start()
        return _Worker(name, device, process, jobs)

    def free(self) -> bool:
        return any(w.job is None for w in self.workers)

    def submit(self, job: Job) -> str:
        worker = next(w for w in self.workers if w.job is None)
        worker.job, worker.started = job, time.time()
        worker.jobs.put(job)
        return worker.name

    def _replace_dead(self) -> list[Event]:
        lost: list[Event] = []
        for i, worker in enumerate(self.workers):
            if worker.process.exitcode is None:
                continue
            if not worker.ready:
                self.failed_starts += 1
                if self.failed_starts > self.executor.max_retries + 2:
                    raise RuntimeError(f"worker processes fail to start (exit code {worker.process.exitcode}); "
                                       "run with --executor serial to see why")
            self.workers[i] = self._start(i)
            if worker.job is not None:
                lost.append(Lost(worker.job, worker.name, f"died (exit code {worker.process.exitcode})"))
        return lost

    def events(self) -> list[Event]:
        events = self._replace_dead()
        try:
            kind, name, payload = self.results.get(timeout=0.2)
        except queue.Empty:
            return events
        if kind == "log":
            self.executor.log(payload)
        elif kind == "ready":
            self.executor.worker_threads[name] = payload
            for worker in self.workers:
                if worker.name == name:
                    worker.ready = True
        else:
            worker = next((w for w in self.workers if w.name == name), None)
            if worker is not None and worker.job is not None and worker.job.key == payload.key:
                events.append(Finished(worker.job, payload))
                worker.job = None
            # else: a late answer from a replaced worker
        return events

    def close(self, finished: bool) -> None:
        for worker in self.workers:
            if not finished:  # interrupted or failed: stop now, the store keeps what is finished
                worker.process.kill()
            elif worker.process.is_alive():
                worker.jobs.put(None)
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()


class LocalExecutor(DispatchExecutor):
    """``workers`` processes; worker i uses ``devices[i % len(devices)]`` and ``threads`` CPU threads."""

    def __init__(self, workers: int, threads: int = 1, devices: list[str] | None = None, max_retries: int = 2,
                 on_start: StartHook | None = None, log: Log | None = None) -> None:
        if workers < 1 or threads < 1:
            raise ValueError("workers and threads must be at least 1")
        super().__init__(max_retries, on_start, log)
        self.workers = workers
        self.threads = threads
        self.devices = devices or ["cpu"]
        self.worker_threads: dict[str, int] = {}  # what each worker reported: torch.get_num_threads()
        self._context = _context()
        self._host = socket.gethostname()

    def backend(self) -> Backend:
        return LocalBackend(self)
