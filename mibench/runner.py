"""A run: plan the grid, hand the jobs to an executor, turn job results into rows and tables.

The runner owns what the executor does not: provenance (run.json), the result rows
of each cell, the CSVs (rewritten after every finished cell, so finished work is
never lost) and the error log. Which job runs where and when is the executor's.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

import mibench
from mibench.config.resolve import ResolvedGrid
from mibench.engine.devices import resolve_device
from mibench.engine.attacking import load_attack_output
from mibench.engine.jobs import AttackJob, Job, TrainJob, pool_scores
from mibench.engine.metrics import attack_metrics
from mibench.engine.layout import RunLayout
from mibench.engine.plan import Cell, Plan, build_plan, predict_key
from mibench.engine.store import stable_hash
from mibench.config.execution import ExecutionConfig
from mibench.execution.executor import Executor, JobResult, SerialExecutor
from mibench.execution.factory import ExecutionPlan, make_executor, resolve_execution
from mibench.execution.scheduler import job_cost
from mibench.engine.jobs import ATTACK_PATH
from mibench.engine.models import TRAINING_PATH
from mibench.registry.code import code_path_digest
from mibench.registry.table import Registry
from mibench.report.results import ResultRow, leaderboard, rows_frame, write_csv
from mibench.sdk import progress_bar, result_dump

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


def _non_finite(metrics: dict[str, Any]) -> str:
    """The AUC and TPR metrics that are not finite, as 'name=value, ...' ('' when all are).

    An ok row never carries one: they would go into the leaderboard's means.
    """
    bad = [k for k in ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr") if not math.isfinite(metrics[k])]
    return ", ".join(f"{k}={metrics[k]}" for k in bad)


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
        self.executor = executor or SerialExecutor(on_start=lambda job: self._on_start(job, "serial"))
        self._summary = RunSummary(self.output_dir, [])
        self._per_target: dict[tuple[int, Any], list[ResultRow]] = {}  # pool protocol: (cell, attack) -> rows

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
        if isinstance(job, TrainJob):  # a finished one is read from the store, never started
            self.log(f"train  {job.label()}" + (f" [{worker}]" if worker != "serial" else ""))
        elif job.kind == "attack":
            self.log(f"attack {job.label()}" + (f" [{worker}]" if worker != "serial" else ""))

    def _record(self, result: JobResult) -> None:
        try:
            with self.layout.jobs_log.open("a") as fh:
                fh.write(json.dumps({"kind": result.kind, "label": result.label, "seconds": round(result.seconds, 3),
                                     "worker": result.worker, "ok": result.ok, "key": result.key}) + "\n")
        except OSError:  # the job record is for reports only; its loss must not stop the run
            pass
        if result.traceback:
            with self.layout.errors_log.open("a") as fh:
                fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {result.label}\n{result.traceback}\n")
        where = f" on {result.worker}" if result.worker and not result.worker.endswith(":serial") else ""
        if result.kind == "train" and result.ok and result.value.trained:
            self._summary.trained.append(result.key.split(":", 1)[1])
            self.log(f"       done in {result.seconds:.1f}s{where}: {result.label}")
        elif result.kind == "attack" and result.ok and where:
            self.log(f"       attack done in {result.seconds:.1f}s{where}: {result.label}")

    # ------------------------------------------------------------------------ rows

    def _cell_rows(self, cell: Cell, results: dict[str, JobResult]) -> list[ResultRow]:
        """The cell's result rows: one per attack (pool protocol: pooled over the targets; see :meth:`_pool_row`).

        Built from the jobs' records and the stored scores alone: no model is opened.
        """
        outputs: dict[str, dict[str, Any]] = {}

        def scores(key: str) -> dict[str, Any]:
            if key not in outputs:
                outputs[key] = load_attack_output(self.store, key)
            return outputs[key]

        rows = []
        for group in cell.attack_groups():
            if self.grid.protocol == "pool":
                rows.append(self._pool_row(cell, group, results, scores))
            else:
                rows.append(self._attack_row(cell, group[0], results, scores))
        return rows

    def _attack_row(self, cell: Cell, attack: AttackJob, results: dict[str, JobResult], scores,
                    report: bool = True) -> ResultRow:
        """One attack job against one target (the paper's protocol; a pool's per-target row).

        ``report``: a failure counts among the run's failures (a pool reports it once, pooled).
        """
        result = results[attack.key]
        if not result.ok:
            return self._row(cell, attack, error=result.error, report=report)
        target, record = results[predict_key(attack.target)].value, result.value
        out = scores(record.output)
        metrics = attack_metrics(out["membership"], out["scores"], out["labels"], out["thresholds"],
                                 out["indices"]).as_row()
        bad = _non_finite(metrics)
        if bad:
            return self._row(cell, attack, error=attack.failure("AssertionError: non-finite metrics " + bad),
                             report=report)
        return self._row(
            cell, attack,
            threshold_mode=record.threshold_mode,
            train_acc=target.train_acc,
            test_acc=target.test_acc,
            **metrics,
            n_members=record.n_members,
            n_nonmembers=record.n_nonmembers,
            defense_info=json.dumps(target.info, sort_keys=True),
        )

    def _pool_row(self, cell: Cell, group: list[AttackJob], results: dict[str, JobResult], scores) -> ResultRow:
        """One attack against every model of a pool: the pooled ROC's metrics, the spread over targets.

        Each per-target row goes to per_target.csv; the pooled scores are stored as an
        attack output of their own (its key in ``attack_output``), so ROC curves and the
        exposure list read them like any other.
        """
        per_target = [self._attack_row(cell, job, results, scores, report=False) for job in group]
        self._per_target[(id(cell), group[0].attack)] = per_target
        failed = [r for r in per_target if r.status == "failed"]
        if failed:
            error = f"{len(failed)} of {len(group)} targets failed; first: {failed[0].error}"
            return self._row(cell, group[0], error=error, targets=len(group))
        key, pooled = pool_scores(self.store, {job.output_key: scores(job.output_key) for job in group})
        metrics = attack_metrics(pooled["membership"], pooled["scores"], pooled["labels"], None,
                                 pooled["indices"]).as_row()
        metrics["balanced_acc"] = float(np.mean([r.balanced_acc for r in per_target]))
        bad = _non_finite(metrics)
        if bad:
            return self._row(cell, group[0], error=group[0].failure("AssertionError: non-finite metrics " + bad))
        spread = {}
        for column in ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr"):
            values = np.array([getattr(r, column) for r in per_target])
            spread[f"{column}_target_mean"] = float(values.mean())
            spread[f"{column}_target_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        return self._row(
            cell, group[0],
            threshold_mode=per_target[0].threshold_mode,
            train_acc=float(np.mean([r.train_acc for r in per_target])),
            test_acc=float(np.mean([r.test_acc for r in per_target])),
            **metrics,
            **spread,
            targets=len(group),
            n_members=int(pooled["membership"].sum()),
            n_nonmembers=int((~pooled["membership"].astype(bool)).sum()),
            defense_info=per_target[0].defense_info,
            attack_output=key,
            target_model="pool:" + stable_hash([job.target.key for job in group]),
        )

    def _row(self, cell: Cell, attack, error: str = "", report: bool = True, **values: Any) -> ResultRow:
        if error and report:
            self._summary.failures.append(f"{attack.attack.label} on {cell.label()}: {error}")
        defense = cell.defense
        swept = {k: getattr(defense.params, k) for k in defense.swept}
        config = {
            "dataset": cell.dataset.spec(), "architecture": cell.architecture.spec(), "defense": defense.spec(),
            "training": result_dump(cell.target.run.training),
            "split_seed": self.grid.split_seed, "seed": cell.seed, "shadow": self.grid.shadow.model_dump(),
            "attack": attack.attack.spec(),
        }
        if self.grid.protocol == "pool":
            config["pool"] = self.grid.pool.model_dump()
        values.setdefault("target_model", attack.target.key)
        values.setdefault("attack_output", attack.output_key)
        return ResultRow(
            run=self.grid.name,
            dataset=cell.dataset.label,
            architecture=cell.architecture.label,
            defense=defense.label,
            defense_name=defense.name,
            defense_params=json.dumps(defense.params_json(), sort_keys=True),
            swept=json.dumps(swept, sort_keys=True, default=str),
            seed=cell.seed,
            attack=attack.attack.label,
            attack_name=attack.attack.name,
            attack_params=json.dumps(attack.attack.params_json(), sort_keys=True),
            threshold_mode=values.pop("threshold_mode", ""),
            shadow_count=len(attack.shadows),
            shadow_training=self.grid.shadow.training,
            status="failed" if error else "ok",
            error=error,
            config_hash=stable_hash(config),
            protocol=self.grid.protocol,
            mibench_version=mibench.__version__,
            plugin_versions=json.dumps(self.registry.versions(), sort_keys=True),
            torch_version=torch.__version__,
            **values,
        )

    # ------------------------------------------------------------------------- run

    def run(self) -> RunSummary:
        self.plan = plan = build_plan(self.resolved)
        self.layout.claim()
        self._write_run_json(plan)
        targets, shadows = plan.model_count()
        self.log(f"{self.grid.name}: {len(plan.cells)} cells, {targets} target and {shadows} shadow models, "
                 f"{len(plan.attack_jobs)} attack jobs; {self.execution_plan.describe()}; output in {self.output_dir}")
        waiting = {id(cell): {a.key for a in cell.attacks} for cell in plan.cells}
        cells_of: dict[str, list[Cell]] = {}
        for cell in plan.cells:
            for attack in cell.attacks:
                cells_of.setdefault(attack.key, []).append(cell)
        results: dict[str, JobResult] = {}
        rows_of: dict[int, list[ResultRow]] = {}
        costs = {k: job_cost(j) for k, j in plan.jobs.items()}
        scale = max(sum(costs.values()), 1.0) / 1000  # the bar counts thousandths of the estimated work
        done_jobs = 0
        with progress_bar(total=1000, desc="run", unit="‰", leave=True,
                          bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]") as bar:
            for result in self.executor.run(plan, self.store, self.device):
                results[result.key] = result
                self._record(result)
                done_jobs += 1
                bar.update(min(costs.get(result.key, 1.0) / scale, 1000 - bar.n))
                bar.set_postfix_str(f"{done_jobs}/{len(plan.jobs)} jobs", refresh=False)
                for cell in cells_of.get(result.key, []):
                    waiting[id(cell)].discard(result.key)
                    if not waiting[id(cell)]:
                        rows_of[id(cell)] = self._cell_rows(cell, results)
                        self._summary.rows = [r for c in plan.cells for r in rows_of.get(id(c), [])]
                        self._write_tables()
        return self._summary

    def _write_tables(self) -> None:
        frame = rows_frame(self._summary.rows)
        tables = [(self.layout.results_csv, frame), (self.layout.leaderboard_csv, leaderboard(frame))]
        if self._per_target:
            per_target = [r for c in self.plan.cells for g in c.attack_groups()
                          for r in self._per_target.get((id(c), g[0].attack), [])]
            tables.append((self.layout.per_target_csv, rows_frame(per_target)))
        for path, table in tables:
            try:
                write_csv(table, path)
            except OSError as exc:  # disk full, read-only: say so, keep going; the store keeps every result
                message = f"writing {path} failed: {exc.strerror or exc}; its rows are kept in the store"
                self.log(f"error: {message}")
                if message not in self._summary.failures:
                    self._summary.failures.append(message)
