"""Executing a plan: train what the store lacks, attack, and write the results.

Cells run one after another; inside a cell the target and its shadows are trained
(each at most once per run directory), their predictions cached, then each attack
runs. A failure is recorded against the cells it touches and the run goes on;
results.csv and leaderboard.csv are rewritten after every cell, so finished work
is never lost.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

import mibench
from mibench.access import ModelAccess, open_model
from mibench.config.resolve import ResolvedGrid
from mibench.interfaces import result_dump
from mibench.jobs import AttackJob, TrainJob, accuracy, resolve_device, run_attack_job, run_predict_job, run_train_job
from mibench.metrics import attack_metrics
from mibench.plan import Cell, Plan, build_plan
from mibench.pools import load_pool, protocol
from mibench.progress import progress_bar
from mibench.registry import Registry
from mibench.results import ResultRow, leaderboard, rows_frame, write_csv
from mibench.store import Store, stable_hash

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)  # above any progress bar, not through it


@dataclass
class RunSummary:
    output_dir: Path
    rows: list[ResultRow]
    trained: list[str] = field(default_factory=list)  # train-job keys trained in this run
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class JobFailed(RuntimeError):
    """A job of this run failed earlier; the message is already the one-line error to record."""


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


class Runner:
    def __init__(self, resolved: ResolvedGrid, registry: Registry, output_dir: Path | None = None,
                 log: Log = _stderr) -> None:
        self.resolved = resolved
        self.grid = resolved.grid
        self.registry = registry
        self.output_dir = Path(output_dir or self.grid.output_dir)
        self.store = Store(self.output_dir / "store")
        self.device = resolve_device(self.grid.device)
        self.log = log
        self._failed_jobs: dict[str, str] = {}  # job or dataset key -> its one-line error
        self._saved_splits: set[str] = set()
        self._summary = RunSummary(self.output_dir, [])

    # ------------------------------------------------------------------ provenance

    def _write_run_json(self, plan: Plan) -> None:
        targets, shadows = plan.model_count()
        info = {
            "grid": self.grid.model_dump(mode="json"),
            "source": self.resolved.source,
            "resolved": {
                kind: [c.spec() | {"label": c.label} for c in getattr(self.resolved, kind)]
                for kind in ("datasets", "architectures", "defenses", "attacks")
            },
            "plan": {"targets": targets, "shadows": shadows, "attack_jobs": len(plan.attack_jobs)},
            "mibench_version": mibench.__version__,
            "plugin_versions": self.registry.versions(),
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.processor(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.store.root.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "run.json").write_text(json.dumps(info, indent=2, default=str))

    def _save_splits(self, dataset) -> None:
        """The protocol's index sets of ``dataset``, saved beside the results (once per run)."""
        key = stable_hash([dataset.spec(), self.grid.split_seed])
        if key in self._saved_splits:
            return
        if key in self._failed_jobs:
            raise JobFailed(self._failed_jobs[key])
        try:
            proto = protocol(dataset, self.grid.split_seed)
            pool_size = len(load_pool(dataset))
        except Exception as exc:  # noqa: BLE001 - every cell of this dataset fails with it
            self._failed_jobs[key] = f"loading {dataset.label} failed: {_error_text(exc)}"
            self._log_traceback(dataset.label)
            raise JobFailed(self._failed_jobs[key]) from exc
        arrays = {"target_members": proto.target.members, "target_nonmembers": proto.target.nonmembers,
                  "shadow_half": proto.shadow_half}
        for i in range(self.grid.shadow.count):
            split = proto.shadow(i)
            arrays[f"shadow{i}_members"] = split.members
            arrays[f"shadow{i}_nonmembers"] = split.nonmembers
        self.store.save_arrays("splits", key, **arrays)
        self.store.save_json("splits", key, {"dataset": dataset.spec(), "split_seed": self.grid.split_seed,
                                             "pool_size": pool_size})
        self._saved_splits.add(key)

    # ------------------------------------------------------------------------ jobs

    def _ensure_trained(self, job: TrainJob) -> None:
        if job.key in self._failed_jobs:
            raise JobFailed(self._failed_jobs[job.key])
        if all(self.store.has("models", k, "pt") for k in job.model_keys()):
            return
        started = time.time()
        self.log(f"train  {job.label()}")
        try:
            run_train_job(job, self.store, self.device)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self._failed_jobs[job.key] = f"training {job.role} failed: {_error_text(exc)}"
            self._log_traceback(job.label())
            raise JobFailed(self._failed_jobs[job.key]) from exc
        self._summary.trained.append(job.key)
        self.log(f"       done in {time.time() - started:.1f}s")

    def _log_traceback(self, what: str) -> None:
        with (self.output_dir / "errors.log").open("a") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{traceback.format_exc()}\n")

    def _run_cell(self, cell: Cell) -> list[ResultRow]:
        rows: list[ResultRow] = []
        jobs = self.plan.train_jobs
        opened: dict[str, ModelAccess] = {}  # each model read from disk once per cell

        def open_once(store, job, key, device):
            if key not in opened:
                opened[key] = open_model(store, job, key, device)
            return opened[key]

        try:
            self._save_splits(cell.dataset)
            self._ensure_trained(jobs[cell.target[0]])
            target_job = jobs[cell.target[0]]
            target = open_once(self.store, target_job, target_job.model_key(cell.target[1]), self.device)
            for key, value in cell.shadows if any(a.shadows for a in cell.attacks) else []:
                self._ensure_trained(jobs[key])
                run_predict_job(self.store, jobs[key], jobs[key].model_key(value), self.device, open_once)
            run_predict_job(self.store, target_job, target.key, self.device, open_once)
        except Exception as exc:  # noqa: BLE001 - every attack of this cell fails with it
            message = str(exc) if isinstance(exc, JobFailed) else _error_text(exc)
            if not isinstance(exc, JobFailed):
                self._log_traceback(cell.label())
            return [self._row(cell, a, error=message) for a in cell.attacks]

        train_acc = accuracy(target.logits(target.members), target.labels(target.members))
        test_acc = accuracy(target.logits(target.nonmembers), target.labels(target.nonmembers))
        for attack in cell.attacks:
            self.log(f"attack {attack.attack.label} on {cell.label()}")
            try:
                out = run_attack_job(attack, self.store, self.device, open_once)
                metrics = attack_metrics(out["membership"], out["scores"], out["labels"], out["thresholds"])
            except Exception as exc:  # noqa: BLE001 - recorded, the other attacks go on
                self._log_traceback(f"{attack.attack.label} on {cell.label()}")
                rows.append(self._row(cell, attack, error=f"attack failed: {_error_text(exc)}"))
                continue
            rows.append(
                self._row(
                    cell,
                    attack,
                    threshold_mode=out["threshold_mode"],
                    train_acc=train_acc,
                    test_acc=test_acc,
                    auc=metrics.auc,
                    tpr_at_1pct_fpr=metrics.tpr_at_1pct_fpr,
                    tpr_at_0_1pct_fpr=metrics.tpr_at_01pct_fpr,
                    balanced_acc=metrics.balanced_accuracy,
                    n_members=int(out["membership"].sum()),
                    n_nonmembers=int((~out["membership"].astype(bool)).sum()),
                    defense_info=json.dumps(target.info, sort_keys=True),
                )
            )
        return rows

    def _row(self, cell: Cell, attack: AttackJob, error: str = "", **values: Any) -> ResultRow:
        if error:
            self._summary.failures.append(f"{attack.attack.label} on {cell.label()}: {error}")
        defense = cell.defense
        swept = {k: getattr(defense.params, k) for k in defense.swept}
        config = {
            "dataset": cell.dataset.spec(), "architecture": cell.architecture.spec(), "defense": defense.spec(),
            "training": result_dump(self.plan.train_jobs[cell.target[0]].training),
            "split_seed": self.grid.split_seed, "seed": cell.seed, "shadow": self.grid.shadow.model_dump(),
            "attack": attack.attack.spec(),
        }
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
            target_model=attack.target[1],
            attack_output=attack.key,
            mibench_version=mibench.__version__,
            plugin_versions=json.dumps(self.registry.versions(), sort_keys=True),
            torch_version=torch.__version__,
            **values,
        )

    # ------------------------------------------------------------------------- run

    def run(self) -> RunSummary:
        self.plan = build_plan(self.resolved)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._write_run_json(self.plan)
        targets, shadows = self.plan.model_count()
        self.log(f"{self.grid.name}: {len(self.plan.cells)} cells, {targets} target and {shadows} shadow models, "
                 f"{len(self.plan.attack_jobs)} attack jobs on {self.device}; output in {self.output_dir}")
        with progress_bar(total=len(self.plan.cells), desc="cells", unit="cell", leave=True) as bar:
            for n, cell in enumerate(self.plan.cells, 1):
                self.log(f"[{n}/{len(self.plan.cells)}] {cell.label()}")
                self._summary.rows.extend(self._run_cell(cell))
                self._write_tables()
                bar.update(1)
        return self._summary

    def _write_tables(self) -> None:
        frame = rows_frame(self._summary.rows)
        write_csv(frame, self.output_dir / "results.csv")
        write_csv(leaderboard(frame), self.output_dir / "leaderboard.csv")
