"""The three kinds of job a run is made of, each a pure function of its config.

A job reads its inputs from the :class:`~mibench.store.Store` and writes its outputs
there under a content hash, so it can run in this process, in a worker process or on
another machine that shares the run directory, in any order its dependencies allow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

import mibench
from mibench.config.resolve import PluginConfig
from mibench.config.training import TrainingConfig
from mibench.interfaces import (
    AttackContext,
    result_dump,
    AttackOutput,
    TrainedModel,
    TrainingJob,
)
from mibench.access import build_model, open_model
from mibench.pools import load_pool, protocol
from mibench.store import Store, stable_hash
from mibench.training import Trainer


def resolve_device(name: str) -> torch.device:
    """The grid's device; on CUDA also let cuDNN pick its fastest kernels and matmuls use TF32."""
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return device


def derived_seed(*parts: Any) -> int:
    """A 31-bit seed derived from ``parts`` (stable across processes and machines)."""
    return int(stable_hash(list(parts), 8), 16) & 0x7FFFFFFF


# --------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainJob:
    """Train one model (a target or a shadow) with one defense config.

    For a defense with a ``release_param``, ``defense`` carries that param at its
    default and ``release_values`` lists the values to release: one training run,
    one released model per value.
    """

    dataset: PluginConfig
    architecture: PluginConfig
    defense: PluginConfig
    training: TrainingConfig
    split_seed: int
    role: str
    seed: int
    release_values: tuple[Any, ...] = ()

    def identity(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.spec(),
            "split_seed": self.split_seed,
            "role": self.role,
            "architecture": self.architecture.spec(),
            "defense": self.defense.spec(),
            "training": result_dump(self.training),
            "seed": self.seed,
            "mibench": mibench.__version__,
        }

    @property
    def key(self) -> str:
        return stable_hash(self.identity())

    def model_key(self, release_value: Any = None) -> str:
        if self.defense.info.cls.release_param is None:
            return self.key
        return stable_hash([self.key, release_value])

    def model_keys(self) -> list[str]:
        if self.defense.info.cls.release_param is None:
            return [self.key]
        return [self.model_key(v) for v in self.release_values]

    def label(self) -> str:
        return f"{self.role} {self.dataset.label}/{self.architecture.label}/{self.defense.label} seed {self.seed}"


def run_train_job(job: TrainJob, store: Store, device: torch.device) -> list[str]:
    """Train and save every model of ``job`` that the store lacks; returns the model keys."""
    keys = job.model_keys()
    if all(store.has("models", k, "pt") for k in keys):
        return keys
    pool = load_pool(job.dataset)
    split = protocol(job.dataset, job.split_seed).split_for(job.role)
    torch.manual_seed(job.seed)
    trainer = Trainer(job.training, pool, device, job.seed, desc=job.label())
    context = TrainingJob(
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
    for value, trained in released.items():
        if not store.has("models", job.model_key(value), "pt"):  # a checkpoint already released stays as it is
            _save_model(store, job, value, trained, split.members, seconds)
    return keys


def _save_model(
    store: Store, job: TrainJob, value: Any, trained: TrainedModel, train_split: np.ndarray, seconds: float
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
    }
    store.save_json("models", key, record)
    state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    store.save_torch("models", key, {"state_dict": state, "members": torch.as_tensor(members)})


# ------------------------------------------------------------------ predictions


def run_predict_job(store: Store, job: TrainJob, model_key: str, device: torch.device, opener=open_model) -> None:
    """Cache the model's logits on its own members and non-members."""
    access = opener(store, job, model_key, device)
    access.logits(access.members)
    access.logits(access.nonmembers)


# ----------------------------------------------------------------------- attacks


@dataclass(frozen=True)
class AttackJob:
    """Run one attack against one target, with the target's shadow models."""

    attack: PluginConfig
    target: tuple[TrainJob, str]
    shadows: tuple[tuple[TrainJob, str], ...]
    seed: int

    @property
    def key(self) -> str:
        return stable_hash(
            {
                "attack": self.attack.spec(),
                "target": self.target[1],
                "shadows": [k for _, k in self.shadows],
                "seed": self.seed,
                "mibench": mibench.__version__,
            }
        )


def run_attack_job(job: AttackJob, store: Store, device: torch.device, opener=open_model) -> dict[str, Any]:
    """Run the attack (or load its saved output); returns scores, membership, labels, thresholds.

    ``opener(store, train_job, model_key, device)`` gives a model's access (the runner
    passes one that reads each model once per cell).
    """
    if store.has("attacks", job.key, "npz"):
        return load_attack_output(store, job.key)
    target = opener(store, job.target[0], job.target[1], device)
    shadows = [opener(store, tj, key, device) for tj, key in job.shadows] if job.attack.info.cls.needs_shadows else []
    target_job = job.target[0]
    ctx = AttackContext(pool=target.pool, target=target, shadows=shadows, device=device,
                        seed=derived_seed(job.seed, "attack", job.attack.name),
                        population=protocol(target_job.dataset, target_job.split_seed).shadow_half)
    torch.manual_seed(ctx.seed)
    output = job.attack.create().run(ctx)
    if not isinstance(output, AttackOutput):
        raise TypeError(f"attack {job.attack.name!r} returned {type(output).__name__}, not an AttackOutput")
    scores = np.asarray(output.scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(ctx.eval_indices):
        raise ValueError(f"attack {job.attack.name!r} returned {len(scores)} scores for {len(ctx.eval_indices)} samples")
    thresholds = np.asarray(np.nan if output.thresholds is None else output.thresholds, dtype=np.float64)
    store.save_json("attacks", job.key, {"threshold_mode": output.threshold_mode, "info": output.info,
                                         "has_thresholds": output.thresholds is not None})
    store.save_arrays(
        "attacks",
        job.key,
        scores=scores,
        membership=ctx.eval_membership,
        labels=target.labels(ctx.eval_indices).numpy(),
        indices=ctx.eval_indices,
        thresholds=thresholds,
    )
    return load_attack_output(store, job.key)


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


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        return math.nan
    return float((logits.argmax(1) == labels).float().mean())
