"""``protocol: pool`` (REFERENCE §7, Carlini et al. 2022): M models per cell, each the target once.

Each attack runs M times, against each model with the other M - 1 as its references;
the cell's row pools the M ROC curves (Carlini et al.) and reports the spread over
targets, and every per-target row goes to ``per_target.csv``.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from mibench.config.errors import Problem
from mibench.config.grid import MIN_POOL_MODELS
from mibench.config.plugin_config import PluginConfig
from mibench.config.resolve import needs_of
from mibench.config.seeds import derived_seed
from mibench.engine.epsilon import audit_epsilon
from mibench.engine.metrics import attack_metrics, select_rows
from mibench.engine.models import ModelRef, TrainingRun
from mibench.engine.plan import CellSpec, RunBook, training_identity
from mibench.engine.protocols.base import Assignment, Protocol
from mibench.engine.protocols.splits import PoolSplits, Role
from mibench.engine.store import Store, stable_hash
from mibench.sdk import ReferenceNeeds

SPREAD = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")

CANARY_STRATEGY = "mibench.engine.protocols.canary:CanaryPoolProtocol"  # the pool protocol with pool.canaries

# Which rows of an attack output (by their pool indices) a population keeps; None: every row.
Selection = Callable[[np.ndarray], np.ndarray] | None


def pool_seed(target_seed: int, m: int) -> int:
    """The training seed of pool model ``m`` in the pool of grid seed ``target_seed``."""
    return derived_seed(target_seed, "pool", m)


@dataclass(frozen=True)
class PoolProtocol(Protocol):
    """``models`` models on a random half each of ``dataset_fraction`` of the pool."""

    name: ClassVar[str] = "pool"
    splits_type: ClassVar[type[PoolSplits]] = PoolSplits
    accepts_canaries: ClassVar[bool] = True
    models: int = 16
    dataset_fraction: float = 0.5
    # (method, delta, confidence per attack row) of each row's empirical epsilon (mibench.engine.epsilon);
    # in no key: rows are recomputed from the stored scores
    epsilon: tuple[str, float, float] = ("one-run", 1e-5, 0.95)

    @classmethod
    def from_grid(cls, grid) -> "PoolProtocol":
        e = grid.pool.epsilon
        # every attack config (a sweep's combinations included) is bounded at alpha / k, so the largest bound
        # over them still holds at the grid's confidence
        configs = sum(math.prod(len(values) for values in entry.sweep.values()) for entry in grid.attacks)
        return cls(grid.pool.models, grid.pool.dataset_fraction,
                   (e.method, e.delta, 1 - (1 - e.confidence) / max(configs, 1)))

    @classmethod
    def check(cls, grid, attacks: Sequence[PluginConfig]) -> list[Problem]:
        problems = []
        models = grid.pool.models
        if models < MIN_POOL_MODELS:
            problems.append(Problem(("pool", "models"), f"must be >= {MIN_POOL_MODELS}: each target of the pool "
                                    f"needs IN and OUT reference models among the other {models - 1}"))
        # Balanced (as many IN as OUT), a target's references give each sample M // 2 - 1 of each.
        per_side = models // 2 - 1
        short = {}
        for a in attacks:
            if needs_of(a).count > per_side:
                short.setdefault(a.position, (a, needs_of(a).count))
        for position, (a, count) in sorted(short.items()):
            problems.append(Problem(("attacks", position), f"attack {a.label!r} needs {count} IN and {count} OUT "
                                    f"reference models per sample; pool.models {models} gives {per_side} of "
                                    f"each (use at least {2 * count + 2} models)"))
        if grid.pool.base == "always":
            if grid.pool.canaries is None:
                problems.append(Problem(("pool", "base"), "'always' (every sample IN for every model) needs "
                                        "pool.canaries: only the canaries' membership varies"))
            for a in attacks:
                if a.info.cls.fits_on_reference_samples:
                    problems.append(Problem(("attacks", a.position), f"attack {a.label!r} learns from the reference "
                                            "models' members and non-members; under pool.base: always their only "
                                            "non-members are canaries: use pool.base: half"))
        return problems

    def with_canaries(self, canaries: PluginConfig, grid) -> "PoolProtocol":
        # The audit's strategy builds on this module, so it is found by name (as the registry finds protocols).
        module, _, name = CANARY_STRATEGY.partition(":")
        strategy = getattr(importlib.import_module(module), name)
        return strategy(self.models, self.dataset_fraction, self.epsilon, canaries, grid.pool.canaries.count,
                        grid.pool.base)

    def describe(self, grid) -> str:
        return (f"pool: {self.models} models per defense config and seed, each on half of "
                f"{self.dataset_fraction:.0%} of the pool; each the target once, the others its references")

    def attack_need(self, need: ReferenceNeeds) -> str:
        if not need.uses_references:
            return "the target alone"
        side = f"{need.count} IN and {need.count} OUT" if need.mode == "online" else f"{need.count} OUT"
        return f"the pool's other models as references (at least {side} per sample)"

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"pool": [self.models, self.dataset_fraction]}

    def build_splits(self, pool_size: int, split_seed: int) -> PoolSplits:
        return PoolSplits.build(pool_size, split_seed, self.models, self.dataset_fraction)

    def training_samples(self, pool_size: int) -> int:
        return int(pool_size * self.dataset_fraction) // 2

    def cell(self, book: RunBook, spec: CellSpec, resolved) -> tuple[list[ModelRef], list[Assignment]]:
        identity, value = training_identity(spec.defense)
        models = [book.add(TrainingRun(spec.dataset, spec.architecture, identity, spec.training, spec.split_seed,
                                       Role("pool", m), pool_seed(spec.seed, m), protocol=self), value)
                  for m in range(self.models)]
        assignments = []
        for attack in resolved.attacks:
            uses = needs_of(attack).uses_references
            for m, target in enumerate(models):
                references = tuple(r for i, r in enumerate(models) if i != m) if uses else ()
                assignments.append(Assignment(attack, target, references))
        return models, assignments

    # ---------------------------------------------------------------------- rows

    def row_config(self, grid) -> dict[str, Any]:
        return {"pool": grid.pool.model_dump()}

    @property
    def calibrated(self) -> bool:
        """Whether rows report metrics that rest on a threshold calibrated on the references (balanced accuracy)."""
        return True

    def populations(self, cell) -> dict[str, Selection]:
        """The sample populations each attack's rows report, by name: here one, every evaluated sample."""
        return {"": None}

    def canary_rows(self, cell) -> np.ndarray | None:
        """The pool rows of the cell's canaries (None: a design without canaries)."""
        return None

    def rows(self, cell, builder) -> tuple[list[Any], list[Any]]:
        rows, per_target = [], []
        populations = self.populations(cell)
        for group in cell.attack_groups():
            for population, select in populations.items():
                targets = [builder.attack_row(cell, job, report=False, select=select, population=population,
                                              calibrated=self.calibrated) for job in group]
                per_target.extend(targets)
                rows.append(self._pooled_row(cell, group, targets, builder, select, population))
        return rows, per_target

    def _pooled_row(self, cell, group, per_target, builder, select: Selection = None, population: str = "") -> Any:
        """One attack against every model of the pool: the pooled ROC's metrics, the spread over targets.

        Each per-target row goes to per_target.csv; the pooled scores are stored as an
        attack output of their own (its key in ``attack_output``), so ROC curves and the
        exposure list read them like any other. ``select`` keeps one population's samples.
        """
        failed = [r for r in per_target if r.status == "failed"]
        if failed:
            error = f"{len(failed)} of {len(group)} targets failed; first: {failed[0].error}"
            first = population == next(iter(self.populations(cell)))  # one failure line per attack, not per population
            return builder.row(cell, group[0], error=error, targets=len(group), population=population, report=first)
        try:
            key, pooled = pool_scores(builder.store, {job.output_key: builder.scores(job.output_key) for job in group},
                                      self.canary_rows(cell))
        except PooledWriteError as exc:  # the metrics need only the arrays in memory
            key, pooled = exc.key, exc.arrays
            builder.write_failed(exc.path, exc.error)
        if select is not None:
            pooled = select_rows(pooled, select(pooled["indices"]))
        metrics = attack_metrics(pooled["membership"], pooled["scores"], pooled["labels"], None,
                                 pooled["indices"]).as_row()
        metrics["balanced_acc"] = float(np.mean([r.balanced_acc for r in per_target]))
        bad = builder.non_finite(metrics)
        if bad:
            return builder.row(cell, group[0], error=group[0].failure("AssertionError: non-finite metrics " + bad))
        method, delta, confidence = self.epsilon
        bound = audit_epsilon(pooled["scores"], pooled["membership"], pooled["target"], method, delta, confidence,
                              seed=cell.target.run.split_seed)
        claimed = json.loads(per_target[0].defense_info or "{}").get("epsilon")
        accountant = float(claimed) if isinstance(claimed, (int, float)) else math.nan
        if bound.eps > accountant:  # a DP defense's accountant bounds epsilon from above: this cannot happen
            return builder.row(cell, group[0], population=population, targets=len(group), error=group[0].failure(
                f"AssertionError: the empirical epsilon lower bound {bound.eps:.4g} ({bound.method}, delta "
                f"{bound.delta:g}, {population or 'all'} samples) exceeds the accountant's epsilon {accountant:.4g}: "
                "a bug in the accountant, the attack or the bound"))
        spread = {}
        for column in SPREAD:
            values = np.array([getattr(r, column) for r in per_target])
            spread[f"{column}_target_mean"] = float(values.mean())
            spread[f"{column}_target_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        return builder.row(
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
            population=population,
            eps_lower=bound.eps,
            eps_method=bound.method,
            eps_delta=bound.delta,
            eps_confidence=bound.confidence,
            eps_choice=bound.choice,
            accountant_epsilon=accountant,
        )


class PooledWriteError(Exception):
    """The pooled scores were computed but could not be stored (disk full): key, arrays, path and the OSError."""

    def __init__(self, key: str, arrays: dict[str, np.ndarray], path: Any, error: OSError) -> None:
        super().__init__(str(error))
        self.key, self.arrays, self.path, self.error = key, arrays, path, error


def pool_scores(store: Store, outputs: dict[str, dict[str, np.ndarray]],
                canary_rows: np.ndarray | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """The outputs of one attack against each model of a pool (by output key, in target order), concatenated.

    Scores are pooled as they are (Carlini et al. pool the ROC over targets); ``target``
    says which output (position in ``outputs``) each row came from, and, in a canary
    audit, ``canary`` whether its sample is a canary (``canary_rows``). The pooled output
    is written once, for the ROC curves, the report and the exposure list. Returns (key, arrays).
    """
    key = stable_hash(["pooled", *outputs] + (["canaries"] if canary_rows is not None else []))
    parts = list(outputs.values())
    arrays = {name: np.concatenate([p[name] for p in parts]) for name in ("scores", "membership", "labels", "indices")}
    arrays["target"] = np.concatenate([np.full(len(p["scores"]), i) for i, p in enumerate(parts)])
    if canary_rows is not None:
        arrays["canary"] = np.isin(arrays["indices"], canary_rows)
    if not (store.has("attacks", key, "npz") and store.has("attacks", key, "json")):
        try:
            store.save_json("attacks", key, {"threshold_mode": "none", "info": {"pooled": list(outputs)},
                                             "has_thresholds": False})
            store.save_arrays("attacks", key, thresholds=np.asarray(np.nan), **arrays)
        except OSError as exc:
            raise PooledWriteError(key, arrays, getattr(exc, "filename", None) or store.root / "attacks", exc) from exc
    return key, arrays
