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
from typing import Callable, Iterator

import torch

from mibench.engine.jobs import Job, JobContext
from mibench.engine.plan import Plan
from mibench.engine.store import Store
from mibench.execution.executor import Executor, JobResult, ModelCache, run_job, stored_results
from mibench.execution.scheduler import Retries, Scheduler

StartHook = Callable[[Job, str], None]
MODELS_KEPT = 8


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


def _worker(name: str, threads: int, device: str, store_root: str, jobs: mp.Queue, results: mp.Queue,
            environ: dict[str, str]) -> None:
    os.environ.clear()  # the run's environment, not the forkserver's (started earlier, perhaps by another run)
    os.environ.update(environ)
    set_threads(threads)
    from mibench.engine.devices import resolve_device

    dev = resolve_device(device)
    store = Store(store_root, report=lambda message: results.put(("log", name, message)))
    ctx = JobContext(store, dev, ModelCache(MODELS_KEPT))
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


class LocalExecutor(Executor):
    """``workers`` processes; worker i uses ``devices[i % len(devices)]`` and ``threads`` CPU threads."""

    def __init__(self, workers: int, threads: int = 1, devices: list[str] | None = None, max_retries: int = 2,
                 on_start: StartHook | None = None, log: Callable[[str], None] | None = None) -> None:
        if workers < 1 or threads < 1:
            raise ValueError("workers and threads must be at least 1")
        self.workers = workers
        self.threads = threads
        self.devices = devices or ["cpu"]
        self.max_retries = max_retries
        self.on_start = on_start
        self.log = log or (lambda message: None)
        self.worker_threads: dict[str, int] = {}  # what each worker reported: torch.get_num_threads()
        self._context = _context()
        self._host = socket.gethostname()

    def _start(self, index: int, store: Store, results: mp.Queue) -> _Worker:
        name = f"{self._host}:w{index}"
        device = self.devices[index % len(self.devices)]
        jobs = self._context.Queue()
        process = self._context.Process(target=_worker, name=name, daemon=True,
                                        args=(name, self.threads, device, str(store.root), jobs, results,
                                              dict(os.environ)))
        process.start()
        return _Worker(name, device, process, jobs)

    def run(self, plan: Plan, store: Store, device: torch.device) -> Iterator[JobResult]:
        scheduler = Scheduler(plan)
        for result in stored_results(plan, store):  # before any worker starts: a finished rerun starts none
            yield result
            yield from scheduler.finish(result)
        if scheduler.done():
            return
        results: mp.Queue = self._context.Queue()
        workers = [self._start(i, store, results) for i in range(self.workers)]
        retries = Retries(self.max_retries, self.log)
        failed_starts = 0
        finished = False
        try:
            while not scheduler.done():
                for i, worker in enumerate(workers):
                    if worker.process.exitcode is not None:  # died: a fresh worker takes its place
                        if not worker.ready:
                            failed_starts += 1
                            if failed_starts > self.max_retries + 2:
                                raise RuntimeError(f"worker processes fail to start (exit code "
                                                   f"{worker.process.exitcode}); run with --executor serial "
                                                   "to see why")
                        workers[i] = self._start(i, store, results)
                        lost = retries.lost(worker.job, worker.name, f"died (exit code {worker.process.exitcode})") \
                            if worker.job is not None else None
                        if lost is not None:
                            yield lost
                            yield from scheduler.finish(lost)
                for worker in workers:
                    if worker.job is None and (retries.queue or scheduler.has_ready()):
                        job = retries.queue.pop() if retries.queue else scheduler.pop()
                        worker.job, worker.started = job, time.time()
                        if self.on_start is not None:
                            self.on_start(job, worker.name)
                        worker.jobs.put(job)
                try:
                    kind, name, payload = results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind == "log":
                    self.log(payload)
                    continue
                if kind == "ready":
                    self.worker_threads[name] = payload
                    for worker in workers:
                        if worker.name == name:
                            worker.ready = True
                    continue
                worker = next((w for w in workers if w.name == name), None)
                if worker is None or worker.job is None or worker.job.key != payload.key:
                    continue  # a late answer from a replaced worker
                worker.job = None
                yield payload
                yield from scheduler.finish(payload)
            finished = True
        finally:
            for worker in workers:
                if not finished:  # interrupted or failed: stop now, the store keeps what is finished
                    worker.process.kill()
                elif worker.process.is_alive():
                    worker.jobs.put(None)
            for worker in workers:
                worker.process.join(timeout=5)
                if worker.process.is_alive():
                    worker.process.kill()
