"""The jobs a run is made of: splits, train, predict, attack. Each is a pure function of its inputs.

A job has a content key (a hash of every input its output depends on), the keys of
the jobs it depends on, and a ``run`` that reads its inputs from the
:class:`~mibench.engine.store.Store`, writes its outputs there under content hashes and
returns a typed :class:`~mibench.engine.records.Record`, which is stored beside them.
A job is done when its record and outputs are in the store, intact
(:meth:`Job.stored`): a resumed run reads records and runs nothing that is done.
Jobs and records are plain picklable data, so a job can run in this process, in a
worker process or on another machine that shares the run directory, in any order its
dependencies allow.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from mibench.config.plugin_config import PluginConfig
from mibench.engine import attacking, training
from mibench.engine.access import open_model, predictions_key
from mibench.engine.attacking import Opener
from mibench.engine.models import ModelRef, TrainingRun
from mibench.engine.pools import load_pool, splits
from mibench.engine.records import AttackRecord, PredictRecord, Record, SplitsRecord, TrainRecord, load_record, \
    save_record
from mibench.engine.store import Store, stable_hash
from mibench.engine.training import model_stored
from mibench.registry.code import code_path_digest

ATTACK_PATH = "mibench.engine.attacking"  # the engine module whose code path every attack output's key covers


def error_text(exc: BaseException) -> str:
    """An exception as one line: its type and message, whitespace folded, at most 500 characters."""
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


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

    def inputs(self) -> dict:
        """Everything the job's output depends on; its key is their hash (a job that keys itself by
        another object's key, a prediction by its model's, overrides :attr:`key` instead)."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        return f"{self.kind}:" + stable_hash(self.inputs())

    @property
    def deps(self) -> tuple[str, ...]:
        return ()

    def label(self) -> str:
        raise NotImplementedError

    def failure(self, error: str) -> str:
        """The one-line message recorded for this job's failure (and its dependents')."""
        return error

    def outputs_stored(self, store: Store, record: Record) -> bool:
        """Whether the outputs ``record`` names are in the store, intact."""
        return True

    def stored(self, store: Store) -> Record | None:
        """The job's record when it is done (record and outputs in the store, intact), else None."""
        record = load_record(store, self.key)
        return record if record is not None and self.outputs_stored(store, record) else None

    def run(self, ctx: JobContext) -> Record:
        """Do the job (or what is missing of it), store its record, return it."""
        return save_record(ctx.store, self.key, self.compute(ctx))

    def compute(self, ctx: JobContext) -> Record:
        raise NotImplementedError


# ------------------------------------------------------------------------ splits


@dataclass(frozen=True)
class SplitsJob(Job):
    """Load a dataset's pool once and save the protocol's index sets beside the results."""

    kind: ClassVar[str] = "splits"
    dataset: PluginConfig
    split_seed: int
    protocol: Any  # the grid's mibench.engine.protocols.base.Protocol

    def inputs(self) -> dict:
        return {"dataset": self.dataset.spec(), "split_seed": self.split_seed, **self.protocol.identity(),
                **self.protocol.splits_inputs()}

    @property
    def store_key(self) -> str:
        return self.key.split(":", 1)[1]

    def label(self) -> str:
        return f"splits of {self.dataset.label}"

    def failure(self, error: str) -> str:
        return f"loading {self.dataset.label} failed: {error}"

    def outputs_stored(self, store: Store, record: Record) -> bool:
        return store.has("splits", self.store_key, "npz")

    def compute(self, ctx: JobContext) -> SplitsRecord:
        pool_size = len(load_pool(self.dataset))
        ctx.store.save_arrays("splits", self.store_key, **splits(self.dataset, self.split_seed, self.protocol).arrays())
        ctx.store.save_json("splits", self.store_key, {"dataset": self.dataset.spec(), "split_seed": self.split_seed,
                                                       "pool_size": pool_size})
        return SplitsRecord(pool_size)


# ---------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainJob(Job):
    """Train one run (a target or a shadow) and store every model it releases."""

    kind: ClassVar[str] = "train"
    training_run: TrainingRun
    splits: str = ""  # key of the SplitsJob of its dataset

    def inputs(self) -> dict:
        return self.training_run.identity()  # one training run, one job, whatever checkpoints it releases

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.splits,) if self.splits else ()

    def label(self) -> str:
        return self.training_run.label()

    def failure(self, error: str) -> str:
        return f"training {self.training_run.role} failed: {error}"

    def done(self, store: Store) -> bool:
        return all(model_stored(store, k) for k in self.training_run.model_keys())

    def stored(self, store: Store) -> TrainRecord | None:
        """Done when every released model is stored (the models are the record of a training run)."""
        return TrainRecord(tuple(self.training_run.model_keys())) if self.done(store) else None

    def compute(self, ctx: JobContext) -> TrainRecord:
        return training.run_train_job(self.training_run, ctx.store, ctx.device)


@dataclass(frozen=True)
class StackOutcome:
    """What became of one member of a :class:`TrainStackJob`: its record, or its one-line error."""

    key: str
    record: TrainRecord | None
    error: str = ""
    traceback: str = ""


@dataclass(frozen=True)
class StackRecord(Record):
    """The outcomes of a stack's members, in member order; ``fallback``: why it trained one at a time."""

    kind: ClassVar[str] = "train"
    outcomes: tuple[StackOutcome, ...]
    fallback: str = ""


@dataclass(frozen=True)
class TrainStackJob(Job):
    """Train several :class:`TrainJob` of one stack at once (``training.stack``); each keeps its own outcome.

    Not a job of the plan: the dispatch loop makes one of ready TrainJobs with one
    :func:`~mibench.engine.stacking.stack_key` and turns its record back into one result
    per member, so a diverged or failed model fails only its own job (and its
    dependents). If the stack itself fails (a layer that breaks under vmap only at run
    time, memory), every member is trained alone instead and the reason is recorded.
    """

    kind: ClassVar[str] = "train"
    members: tuple[TrainJob, ...]

    @property
    def key(self) -> str:
        return "train-stack:" + stable_hash([m.key for m in self.members])

    def label(self) -> str:
        first, last = self.members[0].training_run, self.members[-1].training_run
        return f"stack of {len(self.members)}: {first.label()} .. {last.role} seed {last.seed}"

    def run(self, ctx: JobContext) -> StackRecord:
        """Train the stack; nothing is saved for the stack itself (each model is its member's record)."""
        try:
            outcomes = training.run_train_stack([m.training_run for m in self.members], ctx.store, ctx.device)
        except Exception as exc:  # noqa: BLE001 - the stack failed as a whole: one model at a time instead
            return StackRecord(tuple(self._alone(m, ctx) for m in self.members),
                               fallback=f"the stack failed ({error_text(exc)})")
        return StackRecord(tuple(
            StackOutcome(m.key, out) if isinstance(out, TrainRecord)
            else StackOutcome(m.key, None, m.failure(error_text(out)),
                              "".join(traceback.format_exception(out)))
            for m, out in zip(self.members, outcomes)))

    @staticmethod
    def _alone(member: TrainJob, ctx: JobContext) -> StackOutcome:
        try:
            return StackOutcome(member.key, member.compute(ctx))
        except Exception as exc:  # noqa: BLE001 - this member's failure only
            return StackOutcome(member.key, None, member.failure(error_text(exc)), traceback.format_exc())


# ------------------------------------------------------------------- predictions


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        return math.nan
    return float((logits.argmax(1) == labels).float().mean())


@dataclass(frozen=True)
class PredictJob(Job):
    """Predict a model's logits on its whole pool once; record its accuracies and info."""

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

    def outputs_stored(self, store: Store, record: Record) -> bool:
        """The record's logits are stored and were made by today's prediction code (their key follows it)."""
        return (isinstance(record, PredictRecord) and record.logits == predictions_key(self.model.key)
                and store.has("predictions", record.logits, "pt"))

    def compute(self, ctx: JobContext) -> PredictRecord:
        access = ctx.opener(ctx.store, self.model, ctx.device)
        logits = access.pool_logits()
        labels = access.pool.labels
        members, nonmembers = (torch.as_tensor(indices) for indices in access.utility())
        return PredictRecord(self.model.key, access.predictions_key,
                             train_acc=accuracy(logits[members], labels[members]),
                             test_acc=accuracy(logits[nonmembers], labels[nonmembers]),
                             info=dict(access.info))


# ----------------------------------------------------------------------- attacks


@dataclass(frozen=True)
class AttackJob(Job):
    """Run one attack against one target, with the target's shadow models; store its scores."""

    kind: ClassVar[str] = "attack"
    attack: PluginConfig
    target: ModelRef
    shadows: tuple[ModelRef, ...]
    seed: int
    predictions: tuple[str, ...] = field(default=())  # keys of the PredictJobs of target and shadows

    def inputs(self) -> dict:
        return {
            "attack": self.attack.spec(),
            "target": self.target.key,
            "shadows": [s.key for s in self.shadows],
            "seed": self.seed,
            "engine": code_path_digest(ATTACK_PATH),
        }

    @property
    def output_key(self) -> str:
        """Key of the attack's stored output (scores, thresholds) in ``store/attacks``."""
        return stable_hash(self.inputs())

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

    def outputs_stored(self, store: Store, record: Record) -> bool:
        return (isinstance(record, AttackRecord) and store.has("attacks", record.output, "npz")
                and store.has("attacks", record.output, "json"))

    def compute(self, ctx: JobContext) -> AttackRecord:
        return attacking.run_attack_job(self, ctx.store, ctx.device, ctx.opener)
