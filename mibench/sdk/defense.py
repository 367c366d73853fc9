"""The defense interface: a plugin that trains a model on its member split and releases it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from mibench.sdk.dataset import Pool
from mibench.sdk.params import Plugin
from mibench.sdk.objective import Objective, ObjectiveSpec
from mibench.sdk.trainer import Trainer


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
class TrainingContext:
    """Everything a defense receives to train one model.

    ``train_indices`` index ``pool``; ``build_model()`` returns a fresh network
    on ``device`` (torch is seeded with ``seed`` once, before :meth:`Defense.train`,
    so builds in a fixed order give fixed weights); ``trainer`` runs the shared
    training loop with the grid's training settings. ``release_values`` is set only for a
    defense with a ``release_param``: the values asked for in this grid.
    """

    pool: Pool
    train_indices: np.ndarray
    build_model: Callable[[], nn.Module]
    trainer: Trainer
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

    def train(self, ctx: TrainingContext) -> TrainedModel | Mapping[Any, TrainedModel]:
        """Train on ``ctx.train_indices`` and release the model (or, with a ``release_param``, one per value)."""
        raise NotImplementedError

    def released_architecture(self, model: nn.Module) -> nn.Module:
        """The network a released model's weights load into, given a fresh build of the grid's architecture.

        The engine rebuilds every released model this way before loading its
        weights. The identity, unless the defense changes the architecture it
        trains (DP-SGD replacing batch norm by group norm); it must then build
        its model with this method too.
        """
        return model


class LossDefense(Defense):
    """A defense that only changes the training loss; the shared trainer does the rest.

    Such a defense is what ``training.stack`` can train K at a time: the engine calls
    :meth:`prepare` for each model and drives the K models in one loop, exactly as
    :meth:`train` would one at a time. A subclass that overrides :meth:`train` drives
    its own training and is trained one model at a time.
    """

    def objective(self, spec: ObjectiveSpec) -> Objective:
        raise NotImplementedError

    def prepare(self, ctx: TrainingContext) -> tuple[nn.Module, Objective]:
        """A fresh model and its objective, on ``ctx.device``, built in the order that fixes their seeds."""
        model = ctx.build_model()
        objective = self.objective(ObjectiveSpec(ctx.num_classes, feature_dim(model, ctx.pool)))
        return model, objective.to(ctx.device)

    def train(self, ctx: TrainingContext) -> TrainedModel:
        model, objective = self.prepare(ctx)
        ctx.trainer.fit(model, ctx.train_indices, objective)
        return TrainedModel(model, np.asarray(ctx.train_indices))


def feature_dim(model: nn.Module, pool: Pool) -> int:
    """Width of the model's feature output, found with one forward pass."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, features = model(torch.zeros((1, *pool.input_shape), device=device))
    model.train(was_training)
    return int(features.flatten(1).shape[1])
