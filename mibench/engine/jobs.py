"""The jobs a run is made of: splits, train, predict, attack. Each is a pure function of its config.

A job has a content key, the keys of the jobs it depends on, and a ``run`` that reads
its inputs from the :class:`~mibench.engine.store.Store` and writes its outputs there
under content hashes. Jobs and their results are plain picklable data, so a job can
run in this process, in a worker process or on another machine that shares the run
directory, in any order its dependencies allow. A job whose outputs are already in
the store does nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch

from mibench.config.plugin_config import PluginConfig
from mibench.config.seeds import derived_seed
from mibench.engine.access import ModelAccess, TargetView, open_model
from mibench.engine.metrics import attack_metrics
from mibench.engine.models import ModelRef, TrainingRun, build_model
from mibench.engine.pools import load_pool, protocol
from mibench.engine.protocol import PoolLayout
from mibench.engine.store import Store, stable_hash
from mibench.registry.code import engine_digest
from mibench.sdk import AttackContext, AttackOutput, TrainedModel, Trainer, TrainingContext, TrainingDiverged

Opener = Callable[[Store, ModelRef, torch.device], ModelAccess]


@dataclass
class JobContext:
    """Where a job runs: the store, the device, and how models are opened (cached per cell by the executor)."""

    store: Store
    device: torch.device
    opener: Opener = open_model


@dataclass(frozen=True)
class Job:
    """Base of the four job kinds: a content ``key``, the ``deps`` keys, a ``label`` for logs."""

    kind: ClassVar[str] = "job"

    @property
    def key(self) -> str:
        raise NotImplementedError

    @property
    def deps(self) -> tuple[str, ...]:
        return ()

    def label(self) -> str:
        raise NotImplementedError

    def failure(self, error: str) -> str:
        """The one-line message recorded for this job's failure (and its dependents')."""
        return error

    def run(self, ctx: JobContext) -> dict[str, Any]:
        raise NotImplementedError


# ------------------------------------------------------------------------ splits


@dataclass(frozen=True)
class SplitsJob(Job):
    """Load a dataset's pool once and save the protocol's index sets beside the results."""

    kind: ClassVar[str] = "splits"
    dataset: PluginConfig
    split_seed: int
    shadow_count: int
    layout: PoolLayout | None = None

    @property
    def key(self) -> str:
        pool = [] if self.layout is None else [self.layout.models, self.layout.dataset_fraction]
        return "splits:" + stable_hash([self.dataset.spec(), self.split_seed, *pool])

    def label(self) -> str:
        return f"splits of {self.dataset.label}"

    def failure(self, error: str) -> str:
        return f"loading {self.dataset.label} failed: {error}"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        proto = protocol(self.dataset, self.split_seed, self.layout)
        pool_size = len(load_pool(self.dataset))
        if proto.model_pool is not None:
            arrays = {"pool_samples": proto.model_pool.samples, "population": proto.model_pool.population,
                      "pool_inside": proto.model_pool.inside}
        else:
            arrays = {"target_members": proto.target.members, "target_nonmembers": proto.target.nonmembers,
                      "shadow_half": proto.shadow_half}
        for i in range(self.shadow_count):  # 0 under the pool protocol
            split = proto.shadow(i)
            arrays[f"shadow{i}_members"] = split.members
            arrays[f"shadow{i}_nonmembers"] = split.nonmembers
        key = self.key.split(":", 1)[1]
        ctx.store.save_arrays("splits", key, **arrays)
        ctx.store.save_json("splits", key, {"dataset": self.dataset.spec(), "split_seed": self.split_seed,
                                            "pool_size": pool_size})
        return {"pool_size": pool_size}


# ---------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainJob(Job):
    """Train one run (a target or a shadow) and store every model it releases."""

    kind: ClassVar[str] = "train"
    training_run: TrainingRun
    splits: str = ""  # key of the SplitsJob of its dataset

    @property
    def key(self) -> str:
        return "train:" + self.training_run.key

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.splits,) if self.splits else ()

    def label(self) -> str:
        return self.training_run.label()

    def failure(self, error: str) -> str:
        return f"training {self.training_run.role} failed: {error}"

    def done(self, store: Store) -> bool:
        return all(model_stored(store, k) for k in self.training_run.model_keys())

    def run(self, ctx: JobContext) -> dict[str, Any]:
        if self.done(ctx.store):
            return {"trained": False}
        run_train_job(self.training_run, ctx.store, ctx.device)
        return {"trained": True}


def model_stored(store: Store, key: str) -> bool:
    """A finished model: its weights and its record, both intact (a damaged one is quarantined)."""
    return store.has("models", key, "pt") and store.has("models", key, "json")


def run_train_job(job: TrainingRun, store: Store, device: torch.device) -> list[str]:
    """Train and save every model of ``job`` that the store lacks; returns the model keys."""
    keys = job.model_keys()
    if all(model_stored(store, k) for k in keys):
        return keys
    pool = load_pool(job.dataset)
    split = protocol(job.dataset, job.split_seed, job.layout).split_for(job.role)
    torch.manual_seed(job.seed)
    trainer = Trainer(job.training, pool, device, job.seed, desc=job.label())
    context = TrainingContext(
        pool=pool,
        train_indices=split.members,
        build_model=lambda: build_model(job.architecture, pool, device),
        trainer=trainer,
        seed=job.seed,
        device=device,
        role=job.role,
        release_values=job.release_values,
    )
    started = time.time()
    released = job.defense.create().train(context)
    seconds = time.time() - started
    if isinstance(released, TrainedModel):
        released = {None: released}
    if not isinstance(released, Mapping):
        raise TypeError(f"defense {job.defense.name!r} returned {type(released).__name__}, not a TrainedModel")
    for trained in released.values():  # every released model first: a diverged run stores none of them
        _check_finite(trained.model)
    for value, trained in released.items():
        if not model_stored(store, job.model_key(value)):  # a checkpoint already released stays as it is
            _save_model(store, job, value, trained, split.members, seconds)
    return keys


def _check_finite(model: torch.nn.Module) -> None:
    """Raise :class:`TrainingDiverged` if a floating tensor of ``model``'s state_dict is not finite.

    Covers every defense, the shared loop's or its own: a model with non-finite
    weights is never stored as finished.
    """
    bad = sum(int((~torch.isfinite(t.detach())).sum()) for t in model.state_dict().values()
              if t.is_floating_point() or t.is_complex())
    if bad:
        raise TrainingDiverged(f"training diverged: {bad} non-finite weights in the released model")


def _save_model(
    store: Store, job: TrainingRun, value: Any, trained: TrainedModel, train_split: np.ndarray, seconds: float
) -> None:
    members = np.asarray(trained.members, dtype=np.int64)
    if not np.isin(members, train_split).all():
        raise AssertionError(f"defense {job.defense.name!r} reports members outside its training split")
    key = job.model_key(value)
    record = {
        "identity": job.identity(),
        "release_value": value,
        "info": dict(trained.info),
        "members": int(len(members)),
        "train_seconds": round(seconds, 3),
        "threads": torch.get_num_threads(),  # model bytes depend on it (CPU reductions split by thread)
    }
    store.save_json("models", key, record)
    state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    store.save_torch("models", key, {"state_dict": state, "members": torch.as_tensor(members)})


# ------------------------------------------------------------------- predictions


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        return math.nan
    return float((logits.argmax(1) == labels).float().mean())


@dataclass(frozen=True)
class PredictJob(Job):
    """Cache a model's logits on its own members and non-members; report its accuracies and info."""

    kind: ClassVar[str] = "predict"
    model: ModelRef
    train: str = ""  # key of the TrainJob that makes the model

    @property
    def key(self) -> str:
        return "predict:" + self.model.key

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.train,) if self.train else ()

    def label(self) -> str:
        return f"predictions of {self.model.run.label()}"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        access = ctx.opener(ctx.store, self.model, ctx.device)
        train_logits = access.logits(access.members)
        test_logits = access.logits(access.nonmembers)
        return {
            "train_acc": accuracy(train_logits, access.labels(access.members)),
            "test_acc": accuracy(test_logits, access.labels(access.nonmembers)),
            "info": dict(access.info),
        }


# ----------------------------------------------------------------------- attacks


@dataclass(frozen=True)
class AttackJob(Job):
    """Run one attack against one target, with the target's shadow models; compute its metrics."""

    kind: ClassVar[str] = "attack"
    attack: PluginConfig
    target: ModelRef
    shadows: tuple[ModelRef, ...]
    seed: int
    predictions: tuple[str, ...] = field(default=())  # keys of the PredictJobs of target and shadows

    @property
    def output_key(self) -> str:
        """Key of the attack's stored output (scores, thresholds) in ``store/attacks``."""
        return stable_hash(
            {
                "attack": self.attack.spec(),
                "target": self.target.key,
                "shadows": [s.key for s in self.shadows],
                "seed": self.seed,
                "engine": engine_digest(),
            }
        )

    @property
    def key(self) -> str:
        return "attack:" + self.output_key

    @property
    def deps(self) -> tuple[str, ...]:
        return self.predictions

    def label(self) -> str:
        return f"{self.attack.label} on {self.target.run.label()}"

    def failure(self, error: str) -> str:
        return f"attack failed: {error}"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        out = run_attack_job(self, ctx.store, ctx.device, ctx.opener)
        _check_thresholds(self.attack.name, out["thresholds"])  # also an output stored before the check existed
        metrics = attack_metrics(out["membership"], out["scores"], out["labels"], out["thresholds"], out["indices"])
        membership = out["membership"].astype(bool)
        return {
            "metrics": metrics.as_row(),
            "threshold_mode": out["threshold_mode"],
            "n_members": int(membership.sum()),
            "n_nonmembers": int((~membership).sum()),
            "info": out["info"],
        }


def run_attack_job(job: AttackJob, store: Store, device: torch.device, opener: Opener = open_model) -> dict[str, Any]:
    """Run the attack (or load its saved output); returns scores, membership, labels, thresholds.

    The attack sees the target through a :class:`TargetView` (no member list) and
    its evaluation samples in pool order; membership is attached here, by the engine.
    """
    key = job.output_key
    if store.has("attacks", key, "npz") and store.has("attacks", key, "json"):
        return load_attack_output(store, key)
    access = opener(store, job.target, device)
    target = TargetView(access)
    uses_shadows = job.attack.info.cls.needs(job.attack.params).uses_shadows
    shadows = [opener(store, ref, device) for ref in job.shadows] if uses_shadows else []
    eval_indices, membership = access.evaluation()
    run = job.target.run
    ctx = AttackContext(pool=access.pool, target=target, shadows=shadows, device=device,
                        seed=derived_seed(job.seed, "attack", job.attack.name), eval_indices=eval_indices,
                        population=protocol(run.dataset, run.split_seed, run.layout).population,
                        pool_models=run.layout.models if run.layout is not None else 0)
    torch.manual_seed(ctx.seed)
    output = job.attack.create().run(ctx)
    if not isinstance(output, AttackOutput):
        raise TypeError(f"attack {job.attack.name!r} returned {type(output).__name__}, not an AttackOutput")
    scores = np.asarray(output.scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(eval_indices):
        raise ValueError(f"attack {job.attack.name!r} returned {len(scores)} scores for {len(eval_indices)} samples")
    if output.thresholds is not None:
        _check_thresholds(job.attack.name, output.thresholds)
    thresholds = np.asarray(np.nan if output.thresholds is None else output.thresholds, dtype=np.float64)
    info = {**output.info, "target_queries": target.queries} if target.queries else dict(output.info)
    store.save_json("attacks", key, {"threshold_mode": output.threshold_mode, "info": info,
                                     "has_thresholds": output.thresholds is not None})
    store.save_arrays(
        "attacks",
        key,
        scores=scores,
        membership=membership,
        labels=access.labels(eval_indices).numpy(),
        indices=eval_indices,
        thresholds=thresholds,
    )
    return load_attack_output(store, key)


def _check_thresholds(attack: str, thresholds: np.ndarray | float | None) -> None:
    """Refuse NaN thresholds (a NaN threshold calls nobody a member: balanced accuracy 0.5, silently).

    Infinite thresholds are legitimate ("nobody" or "everybody" is a member); None means no thresholds.
    """
    if thresholds is None:
        return
    thr = np.asarray(thresholds, dtype=np.float64)
    nan = int(np.isnan(thr).sum())
    if nan:
        what = "its global threshold is" if thr.ndim == 0 else f"{nan} of its {thr.size} per-class thresholds are"
        raise ValueError(f"attack {attack!r} returned NaN thresholds: {what} NaN "
                         "(were its shadow models' outputs finite?)")


def load_attack_output(store: Store, key: str) -> dict[str, Any]:
    arrays = store.load_arrays("attacks", key)
    meta = store.load_json("attacks", key)
    thresholds = arrays["thresholds"]
    return {
        **arrays,
        "thresholds": (thresholds if thresholds.ndim else float(thresholds)) if meta["has_thresholds"] else None,
        "threshold_mode": meta["threshold_mode"],
        "info": meta["info"],
    }


def pool_outputs(store: Store, keys: list[str]) -> tuple[str, dict[str, Any]]:
    """The outputs of one attack against each model of a pool, concatenated and stored as one output.

    Scores are pooled as they are (Carlini et al. pool the ROC over targets); ``target``
    says which output (position in ``keys``) each row came from. Returns (key, arrays).
    """
    key = stable_hash(["pooled", *keys])
    if store.has("attacks", key, "npz") and store.has("attacks", key, "json"):
        return key, load_attack_output(store, key)
    parts = [load_attack_output(store, k) for k in keys]
    arrays = {name: np.concatenate([p[name] for p in parts]) for name in ("scores", "membership", "labels", "indices")}
    arrays["target"] = np.concatenate([np.full(len(p["scores"]), i) for i, p in enumerate(parts)])
    store.save_json("attacks", key, {"threshold_mode": "none", "info": {"pooled": keys}, "has_thresholds": False})
    store.save_arrays("attacks", key, thresholds=np.asarray(np.nan), **arrays)
    return key, load_attack_output(store, key)
