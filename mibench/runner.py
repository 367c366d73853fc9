"""A run: plan the grid, hand the jobs to an executor, turn job results into rows and tables.

The runner owns what the executor does not: provenance (run.json), the result rows
of each cell, the CSVs (rewritten after every finished cell, so finished work is
never lost) and the error log. Which job runs where and when is the executor's.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

import mibench
from mibench.config.resolve import ResolvedGrid
from mibench.engine.devices import resolve_device
from mibench.config.execution import ExecutionConfig
from mibench.engine.estimate import job_cost
from mibench.engine.jobs import ATTACK_PATH, Job, TrainJob, TrainStackJob
from mibench.engine.layout import RunLayout
from mibench.engine.models import TRAINING_PATH
from mibench.engine.plan import Plan, build_plan
from mibench.execution.dispatch import SerialExecutor
from mibench.execution.executor import STORE, Executor, JobResult
from mibench.execution.factory import ExecutionPlan, make_executor, resolve_execution
from mibench.registry.code import code_path_digest
from mibench.registry.table import Registry
from mibench.report.results import ResultRow, leaderboard, rows_frame, write_csv
from mibench.report.rows import CellRows, RowBuilder
from mibench.sdk import progress_bar

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)  # above any progress bar, not through it


@dataclass
class RunSummary:
    output_dir: Path
    rows: list[ResultRow]
    trained: list[str] = field(default_factory=list)  # training-run keys trained in this run
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class Runner:
    def __init__(self, resolved: ResolvedGrid, registry: Registry, output_dir: Path | None = None,
                 log: Log = _stderr, executor: Executor | None = None,
                 execution: ExecutionConfig | None = None) -> None:
        """``executor`` runs the jobs; without one, ``execution`` (settings) chooses it, else a serial one."""
        self.resolved = resolved
        self.grid = resolved.grid
        self.registry = registry
        self.layout = RunLayout(Path(output_dir).expanduser() if output_dir else self.grid.output_dir)
        self.output_dir = self.layout.root
        self.store = self.layout.store()
        self.store.report = log
        self.device = resolve_device(self.grid.device)
        self.log = log
        self.execution = execution
        if executor is None and execution is not None:
            self.execution_plan = resolve_execution(execution, self.grid.device)
            executor = make_executor(self.execution_plan, execution, log, self._on_start)
        else:
            self.execution_plan = ExecutionPlan("serial", 1, torch.get_num_threads(), (str(self.device),), 1)
        self.executor = executor or SerialExecutor(on_start=self._on_start, log=log)
        self._summary = RunSummary(self.output_dir, [])
        self._reused: dict[str, int] = {}  # job kind -> models or results an earlier run left in the store

    # ------------------------------------------------------------------ provenance

    def code_digests(self) -> dict[str, Any]:
        """The engine's code digest and each plugin's, as recorded in run.json."""
        used = {c.info for kind in ("datasets", "architectures", "defenses", "attacks")
                for c in getattr(self.resolved, kind)}
        for extra in (self.resolved.shadow_defense, self.resolved.plain_defense):
            if extra is not None:
                used.add(extra.info)
        return {"engine": {"training": code_path_digest(TRAINING_PATH), "attacks": code_path_digest(ATTACK_PATH)},
                "plugins": {f"{i.kind}/{i.name}": i.code for i in sorted(used, key=lambda i: (i.kind, i.name))}}

    def _write_run_json(self, plan: Plan) -> None:
        targets, shadows = plan.model_count()
        info = {
            "grid": self.grid.model_dump(mode="json"),
            "source": self.resolved.source,
            "resolved": {
                kind: [c.spec() | {"label": c.label} for c in getattr(self.resolved, kind)]
                for kind in ("datasets", "architectures", "defenses", "attacks")
            },
            "plan": {"targets": targets, "shadows": shadows, "attack_jobs": len(plan.attack_jobs),
                     "jobs": len(plan.jobs)},
            "mibench_version": mibench.__version__,
            "plugin_versions": self.registry.versions(),
            "code_digests": self.code_digests(),
            "execution": {"executor": self.execution_plan.executor, "workers": self.execution_plan.workers,
                          "threads_per_job": self.execution_plan.threads_per_job,
                          "devices": list(self.execution_plan.devices),
                          "jobs_per_device": self.execution_plan.jobs_per_device},
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.processor(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.store.root.mkdir(parents=True, exist_ok=True)
        self.layout.run_json.write_text(json.dumps(info, indent=2, default=str))

    # ------------------------------------------------------------------------ jobs

    def _on_start(self, job: Job, worker: str) -> None:
        where = "" if worker.endswith(":serial") else f" [{worker}]"
        if isinstance(job, (TrainJob, TrainStackJob)):  # a finished one is read from the store, never started
            self.log(f"train  {job.label()}{where}")
        elif job.kind == "attack":
            self.log(f"attack {job.label()}{where}")

    def _record(self, result: JobResult) -> None:
        try:
            with self.layout.jobs_log.open("a") as fh:
                fh.write(json.dumps({"kind": result.kind, "label": result.label, "seconds": round(result.seconds, 3),
                                     "worker": result.worker, "ok": result.ok, "key": result.key}) + "\n")
        except OSError:  # the job record is for reports only; its loss must not stop the run
            pass
        if result.traceback:
            try:
                with self.layout.errors_log.open("a") as fh:
                    fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {result.label}\n{result.traceback}\n")
            except OSError as exc:  # the failure itself is in the row and on screen; only its traceback is lost
                self.write_failed(self.layout.errors_log, exc, "the failure is in results.csv")
        if result.worker == STORE:  # done by an earlier run: counted, and said once at the end (run())
            if result.ok:
                self._reused[result.kind] = self._reused.get(result.kind, 0) + (
                    len(result.value.model_keys) if result.kind == "train" else 1)
            return
        where = f" on {result.worker}" if result.worker and not result.worker.endswith(":serial") else ""
        if result.kind == "train" and result.ok and result.value.trained:
            self._summary.trained.append(result.key.split(":", 1)[1])
            self.log(f"       done in {result.seconds:.1f}s{where}: {result.label}")
        elif result.kind == "attack" and result.ok and where:
            self.log(f"       attack done in {result.seconds:.1f}s{where}: {result.label}")

    # ------------------------------------------------------------------------- run

    def run(self) -> RunSummary:
        self.plan = plan = build_plan(self.resolved)
        self.layout.claim()
        self._write_run_json(plan)
        targets, shadows = plan.model_count()
        self.log(f"{self.grid.name}: {len(plan.cells)} cells, {targets} target and {shadows} shadow models, "
                 f"{len(plan.attack_jobs)} attack jobs; {self.execution_plan.describe()}; output in {self.output_dir}")
        waiting = [{a.key for a in cell.attacks} for cell in plan.cells]
        cells_of: dict[str, list[int]] = {}
        for i, cell in enumerate(plan.cells):
            for attack in cell.attacks:
                cells_of.setdefault(attack.key, []).append(i)
        results: dict[str, JobResult] = {}
        builder = RowBuilder(self.resolved, self.registry.versions(), self.store, results,
                             on_write_error=lambda path, exc: self.write_failed(
                                 path, exc, "the rows are kept; curves and exposure lists of those scores are not"))
        self._summary.failures = builder.failures
        rows_of: dict[int, CellRows] = {}
        costs = {k: max(job_cost(j), 1.0) for k, j in plan.jobs.items()}
        scale = sum(costs.values()) / 1000  # the bar counts thousandths of the estimated work
        done_jobs = 0
        with progress_bar(total=1000, desc="run", unit="‰", leave=True,
                          bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]") as bar:
            for result in self.executor.run(plan, self.store, self.device):
                results[result.key] = result
                self._record(result)
                done_jobs += 1
                bar.update(min(costs.get(result.key, 1.0) / scale, 1000 - bar.n))
                bar.set_postfix_str(f"{done_jobs}/{len(plan.jobs)} jobs", refresh=False)
                for i in cells_of.get(result.key, []):
                    waiting[i].discard(result.key)
                    if not waiting[i]:
                        rows_of[i] = builder.cell_rows(plan.cells[i])
                        builder.forget()
                        self._write_tables([rows_of[k] for k in sorted(rows_of)])
        if self._reused.get("train") or self._reused.get("attack"):
            self.log(f"reused from {self.store.root}: {self._reused.get('train', 0)} trained models and "
                     f"{self._reused.get('attack', 0)} attack results (cached, not recomputed)")
        return self._summary

    def _write_tables(self, cells: list[CellRows]) -> None:
        self._summary.rows = [r for c in cells for r in c.rows]
        frame = rows_frame(self._summary.rows)
        tables = [(self.layout.results_csv, frame), (self.layout.leaderboard_csv, leaderboard(frame))]
        per_target = [r for c in cells for r in c.per_target]
        if per_target:
            tables.append((self.layout.per_target_csv, rows_frame(per_target)))
        for path, table in tables:
            try:
                write_csv(table, path)
            except OSError as exc:  # disk full, read-only: say so, keep going; the store keeps every result
                self.write_failed(path, exc, "its rows are kept in the store")

    def write_failed(self, path: Path, exc: OSError, kept: str) -> None:
        """A write of the run that failed (disk full, read-only): one error line, once, and the run goes on."""
        message = f"writing {path} failed: {exc.strerror or exc}; {kept}"
        if message not in self._summary.failures:
            self.log(f"error: {message}")
            self._summary.failures.append(message)
