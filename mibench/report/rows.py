"""From job records and stored scores to result rows: the one owner of a row's fields and config hash.

A :class:`RowBuilder` makes the row of one attack job against one target
(:meth:`RowBuilder.attack_row`) and any row a protocol assembles itself
(:meth:`RowBuilder.row`); the protocol decides which rows a cell has
(:meth:`Protocol.rows <mibench.engine.protocols.base.Protocol.rows>`). Rows are built
from the jobs' records and the stored scores alone, so building them opens no model;
metrics are computed here, from the scores, so editing a metric re-attacks nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import mibench
from mibench.config.resolve import ResolvedGrid
from mibench.engine.attacking import load_attack_output
from mibench.engine.jobs import AttackJob
from mibench.engine.metrics import attack_metrics, select_rows
from mibench.engine.plan import Cell, predict_key
from mibench.engine.store import Store, stable_hash
from mibench.report.results import ResultRow
from mibench.sdk import result_dump

CHECKED = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")  # never non-finite in an ok row (they enter means)


@dataclass
class CellRows:
    """A cell's rows for results.csv and, where its protocol has several targets, for per_target.csv."""

    rows: list[ResultRow]
    per_target: list[ResultRow] = field(default_factory=list)


class RowBuilder:
    """Rows of one run. ``results``: job key -> finished job (``ok``, ``error``, ``value``: its record).

    A failed row (unless made with ``report=False``) adds one line to ``failures``.
    """

    def __init__(self, resolved: ResolvedGrid, versions: dict[str, str], store: Store,
                 results: dict[str, Any], on_write_error: Callable[[Path, OSError], None] | None = None) -> None:
        self.resolved = resolved
        self.on_write_error = on_write_error
        self.grid = resolved.grid
        self.versions = versions
        self.store = store
        self.results = results
        self.failures: list[str] = []
        self._outputs: dict[str, dict[str, Any]] = {}

    def scores(self, key: str) -> dict[str, Any]:
        """A stored attack output (scores, membership, labels, indices, thresholds), read once."""
        if key not in self._outputs:
            self._outputs[key] = load_attack_output(self.store, key)
        return self._outputs[key]

    def write_failed(self, path: Path, exc: OSError) -> None:
        """A derived output (pooled scores) that could not be written: the run says so once and goes on."""
        if self.on_write_error is None:
            raise exc
        self.on_write_error(path, exc)

    def forget(self) -> None:
        """Drop the outputs read so far (a finished cell's are not needed again)."""
        self._outputs.clear()

    @staticmethod
    def non_finite(metrics: dict[str, Any]) -> str:
        """The AUC and TPR metrics that are not finite, as 'name=value, ...' ('' when all are)."""
        return ", ".join(f"{k}={metrics[k]}" for k in CHECKED if not math.isfinite(metrics[k]))

    def cell_rows(self, cell: Cell) -> CellRows:
        """The cell's rows, as its protocol makes them."""
        return CellRows(*self.resolved.protocol.rows(cell, self))

    def attack_row(self, cell: Cell, attack: AttackJob, report: bool = True,
                   select: Callable[[Any], Any] | None = None, population: str = "",
                   calibrated: bool = True) -> ResultRow:
        """One attack job against one target; ``report``: a failure counts among the run's failures.

        ``select`` (pool indices -> which to keep) restricts the metrics to one population
        of the evaluated samples, named ``population`` in the row (a canary audit's
        ``clean`` and ``canary``); ``calibrated`` False leaves out the balanced accuracy
        (its threshold rests on reference non-members the design lacks).
        """
        result = self.results[attack.key]
        if not result.ok:
            return self.row(cell, attack, error=result.error, report=report, population=population)
        target, record = self.results[predict_key(attack.target)].value, result.value
        out = self.scores(record.output)
        if select is not None:
            out = select_rows(out, select(out["indices"]))
        membership, scores, labels, indices = out["membership"], out["scores"], out["labels"], out["indices"]
        metrics = attack_metrics(membership, scores, labels, out["thresholds"] if calibrated else None,
                                 indices).as_row()
        bad = self.non_finite(metrics)
        if bad:
            return self.row(cell, attack, error=attack.failure("AssertionError: non-finite metrics " + bad),
                            report=report, population=population)
        return self.row(
            cell, attack,
            threshold_mode=record.threshold_mode,
            train_acc=target.train_acc,
            test_acc=target.test_acc,
            **metrics,
            n_members=int(membership.sum()),
            n_nonmembers=int((~membership.astype(bool)).sum()),
            defense_info=json.dumps(target.info, sort_keys=True),
            population=population,
        )

    def config_hash(self, cell: Cell, attack: AttackJob, population: str = "") -> str:
        """Hash of everything that configures the row (not the code: keys of models and scores follow that).

        A canary audit's rows of one attack differ by ``population`` (all, clean, canary) alone.
        """
        config = {
            "dataset": cell.dataset.spec(), "architecture": cell.architecture.spec(), "defense": cell.defense.spec(),
            "training": result_dump(cell.target.run.training),
            "split_seed": self.grid.split_seed, "seed": cell.seed, "shadow": self.grid.shadow.model_dump(),
            "attack": attack.attack.spec(),
        }
        if population:
            config["population"] = population
        return stable_hash(config | self.resolved.protocol.row_config(self.grid))

    def row(self, cell: Cell, attack: AttackJob, error: str = "", report: bool = True, **values: Any) -> ResultRow:
        """A row of ``attack`` in ``cell`` with ``values`` (metrics, accuracies...); failed when ``error``."""
        if error and report:
            self.failures.append(f"{attack.attack.label} on {cell.label()}: {error}")
        defense = cell.defense
        swept = {k: getattr(defense.params, k) for k in defense.swept}
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
            config_hash=self.config_hash(cell, attack, values.get("population", "")),
            protocol=self.resolved.protocol.name,
            mibench_version=mibench.__version__,
            plugin_versions=json.dumps(self.versions, sort_keys=True),
            torch_version=torch.__version__,
            **values,
        )
