"""The four plugin interfaces: Dataset, Architecture, Defense and Attack.

A plugin is a class with a ``name``, a pydantic ``Params`` model that validates its
``params:`` block in a grid, and the one method its kind needs. The engine creates
the class with validated params and calls that method; it never looks inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Mapping

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

if TYPE_CHECKING:  # imported for annotations only, to keep this module light
    from mibench.access import ModelAccess
    from mibench.training import Trainer


class Params(BaseModel):
    """Base of every plugin's parameter model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


NEUTRAL = {"affects_results": False}


def location(default: Any, description: str) -> Any:
    """A param that says where to find or put something (a data folder, a download flag).

    It cannot change a result, so it stays out of labels and of the hashes that
    key trained models: moving the data does not retrain anything.
    """
    return Field(default, description=description, json_schema_extra=NEUTRAL)


def tuning(default: Any, description: str, **bounds: Any) -> Any:
    """A param that changes speed or memory only (a batch size for predictions, a chunk size).

    Like :func:`location`, it stays out of labels and hashes: changing it reuses
    every trained model and attack result.
    """
    return Field(default, description=description, json_schema_extra=NEUTRAL, **bounds)


def result_dump(model: BaseModel) -> dict[str, Any]:
    """``model`` as JSON without the fields declared with :func:`location` or :func:`tuning`."""
    fields = type(model).model_fields
    neutral = {k for k, f in fields.items() if (f.json_schema_extra or {}).get("affects_results") is False}
    return model.model_dump(mode="json", exclude=neutral)


class Plugin:
    """Common base: a registered name, a params model and validated params."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring, for ``mibench plugins``."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


# --------------------------------------------------------------------------- datasets


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Pool:
    """All of a dataset's official train and test data, merged (REFERENCE §1).

    ``inputs`` is N x C x H x W; ``inputs / scale`` lies in [0, 1]. The engine
    normalises with ``mean`` and ``std`` per channel. ``augment``, when set, is
    applied to [0, 1] float batches at training time only, with the trainer's
    random generator, and must work on whatever device the batch is on.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0
    augment: Augment | None = None

    def __post_init__(self) -> None:
        if self.inputs.ndim != 4:
            raise ValueError(f"pool inputs must be N x C x H x W, got shape {tuple(self.inputs.shape)}")
        if len(self.inputs) != len(self.labels):
            raise ValueError("pool inputs and labels differ in length")
        channels = self.inputs.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values, one per channel")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.inputs.shape[1:]
        return (int(c), int(h), int(w))


class DatasetParams(Params):
    """Parameters every dataset accepts, on top of its own."""

    pool_size: int | None = Field(
        None, ge=20, description="Use a stratified random subsample of this many pool samples."
    )
    pool_seed: int = Field(0, ge=0, description="Seed of the pool subsample.")


@dataclass(frozen=True)
class DataShape:
    """What a dataset holds, known without loading it (for plans and estimates)."""

    input_shape: tuple[int, int, int]
    num_classes: int
    pool_size: int


class Dataset(Plugin):
    """A source of labelled images: its pool, classes, shape and normalisation."""

    kind: ClassVar[str] = "dataset"
    Params: ClassVar[type[Params]] = DatasetParams

    def load_pool(self) -> Pool:
        """Return the full pool (official train and test sets merged)."""
        raise NotImplementedError

    def shape(self) -> DataShape | None:
        """Input shape, classes and full pool size without loading the data; None if unknown."""
        return None

    def missing_data(self) -> str | None:
        """A message saying how to get the data when it is not available, else None.

        ``mibench validate`` shows it as a warning; ``mibench run`` stops on it.
        """
        return None


# --------------------------------------------------------------------- architectures


class Architecture(Plugin):
    """Builds a classifier whose forward returns ``(logits, features)``.

    ``features`` are the penultimate activations (after global pooling, or the
    input of the last linear layer): CRL's center loss needs them.
    """

    kind: ClassVar[str] = "architecture"

    def build(self, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        raise NotImplementedError


# -------------------------------------------------------------------------- defenses


@dataclass
class TrainedModel:
    """What a defense releases.

    ``members`` are the pool indices the defense treats as its private training
    data: evaluation members are exactly these (REFERENCE §1). ``info`` holds
    numbers or strings worth reporting (DP epsilon, say); it goes into the row.
    """

    model: nn.Module
    members: np.ndarray
    info: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class TrainingJob:
    """Everything a defense needs to train one model.

    ``train_indices`` index ``pool``; ``build_model()`` returns a fresh,
    seeded network on ``device``; ``trainer`` runs the shared training loop
    with the grid's training settings. ``release_values`` is set only for a
    defense with a ``release_param``: the values asked for in this grid.
    """

    pool: Pool
    train_indices: np.ndarray
    build_model: Callable[[], nn.Module]
    trainer: "Trainer"
    seed: int
    device: torch.device
    role: str
    release_values: tuple[Any, ...] = ()

    @property
    def num_classes(self) -> int:
        return self.pool.num_classes


class Defense(Plugin):
    """Trains a model on its member split and releases it.

    Override :meth:`train`, or subclass :class:`LossDefense` to change only the loss.

    ``release_param`` names a param that only chooses which checkpoint of one
    training run is released (early stopping's epoch): configs that differ only
    in it share one training run, and :meth:`train` then returns a mapping from
    each value in ``job.release_values`` to its released model.
    """

    kind: ClassVar[str] = "defense"
    white_box: ClassVar[bool] = True
    release_param: ClassVar[str | None] = None
    training_cost: ClassVar[float] = 1.0  # compute of one training run, in plain-training units (estimates)

    def check_training(self, epochs: int) -> str | None:
        """A problem with these params for a training run of ``epochs`` epochs, or None.

        Called by ``mibench validate`` for every architecture, so that a config that
        cannot work fails before any work rather than mid-run.
        """
        return None

    def train(self, job: TrainingJob) -> TrainedModel | Mapping[Any, TrainedModel]:
        raise NotImplementedError

    def released_architecture(self, model: nn.Module) -> nn.Module:
        """The network a released model's weights load into, given a fresh build of the grid's architecture.

        The engine rebuilds every released model this way before loading its
        weights. The identity, unless the defense changes the architecture it
        trains (DP-SGD replacing batch norm by group norm); it must then build
        its model with this method too.
        """
        return model


class Objective(nn.Module):
    """A training loss with optional state of its own (CRL's class centers).

    ``forward`` gets the model's logits and features for a batch, the targets
    and the 1-based epoch (the paper counts epochs from 1). ``step`` runs after
    the model's optimiser step, to update the objective's own parameters.
    """

    def forward(  # noqa: D401 - torch convention
        self, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        raise NotImplementedError

    def step(self) -> None:
        """Update the objective's own parameters; nothing by default."""


@dataclass(frozen=True)
class ObjectiveSpec:
    """Shapes an objective may need: classes, and the width of the features."""

    num_classes: int
    feature_dim: int


class LossDefense(Defense):
    """A defense that only changes the training loss; the shared trainer does the rest."""

    def objective(self, spec: ObjectiveSpec) -> Objective:
        raise NotImplementedError

    def train(self, job: TrainingJob) -> TrainedModel:
        model = job.build_model()
        objective = self.objective(ObjectiveSpec(job.num_classes, feature_dim(model, job.pool)))
        job.trainer.fit(model, job.train_indices, objective.to(job.device))
        return TrainedModel(model, np.asarray(job.train_indices))


def feature_dim(model: nn.Module, pool: Pool) -> int:
    """Width of the model's feature output, found with one forward pass."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, features = model(torch.zeros((1, *pool.input_shape), device=device))
    model.train(was_training)
    return int(features.flatten(1).shape[1])


# --------------------------------------------------------------------------- attacks


ThresholdMode = Literal["per-class", "global", "none"]


@dataclass
class AttackOutput:
    """An attack's answer for the target's evaluation samples.

    ``scores`` has one value per sample of ``ctx.eval_indices`` (members first,
    then non-members): higher means "more likely a member". ``thresholds`` is the
    decision rule the attack calibrated: an array of one threshold per class
    (``threshold_mode="per-class"``), one float (``"global"``), or None. A sample
    is called a member when its score is >= its threshold. The engine computes
    every metric from these.
    """

    scores: np.ndarray
    thresholds: np.ndarray | float | None = None
    threshold_mode: ThresholdMode = "none"
    info: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class AttackContext:
    """What an attack may use: the target and the shadow models, with their splits.

    ``target.members`` / ``target.nonmembers`` are the evaluation samples (pool
    indices). Each shadow in ``shadows`` comes with its own members and
    non-members. ``pool`` gives the inputs and labels; logits come cached from
    :meth:`ModelAccess.logits`, and the white-box module from
    :meth:`ModelAccess.module` when the attack declares ``needs_white_box``.
    ``population`` holds pool indices of the shadow half: data from the target's
    distribution that the target never saw and the shadows were trained on
    (each shadow on its own half of it); reference-model attacks draw from it.
    """

    pool: Pool
    target: "ModelAccess"
    shadows: list["ModelAccess"]
    device: torch.device
    seed: int
    population: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def eval_indices(self) -> np.ndarray:
        return np.concatenate([self.target.members, self.target.nonmembers])

    @property
    def eval_membership(self) -> np.ndarray:
        return np.concatenate(
            [np.ones(len(self.target.members), bool), np.zeros(len(self.target.nonmembers), bool)]
        )


class Attack(Plugin):
    """Scores the target's evaluation samples; higher means member."""

    kind: ClassVar[str] = "attack"
    needs_white_box: ClassVar[bool] = False
    needs_shadows: ClassVar[bool] = True
    min_shadows: ClassVar[int] = 1  # checked against the grid's shadow.count at validation time

    def run(self, ctx: AttackContext) -> AttackOutput:
        raise NotImplementedError
