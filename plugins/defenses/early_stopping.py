"""Early stopping: train with plain cross-entropy and release the weights of an earlier epoch."""

from __future__ import annotations

import copy

import numpy as np
from pydantic import Field

from mibench.sdk import Defense, Params, TrainedModel, TrainingContext, hookimpl
from mibench_plugins.defenses.ce import CrossEntropy


class EarlyStoppingParams(Params):
    epoch: int = Field(
        10, ge=1, description="The epoch whose weights are released (RelaxLoss evaluates 5, 10, 15, 20, 30, 40, 50, "
        "75, 100, 150, 200, 250). Configs that differ only in epoch share one training run.",
    )


class EarlyStopping(Defense):
    """Early stopping: the CE model's checkpoint at a chosen epoch."""

    name = "early-stopping"
    Params = EarlyStoppingParams
    release_param = "epoch"

    def check_training(self, epochs: int) -> str | None:
        if self.params.epoch > epochs:
            return f"epoch {self.params.epoch} is beyond training.epochs ({epochs})"
        return None

    def train(self, ctx: TrainingContext) -> dict[int, TrainedModel]:
        epochs = sorted(ctx.release_values or (self.params.epoch,))
        limit = ctx.trainer.config.epochs
        if epochs[-1] > limit:
            raise ValueError(f"early-stopping epoch {epochs[-1]} is beyond training.epochs ({limit})")
        model = ctx.build_model()
        released: dict[int, TrainedModel] = {}
        members = np.asarray(ctx.train_indices)

        def keep(epoch, net):
            if epoch in epochs:
                released[epoch] = TrainedModel(copy.deepcopy(net).eval(), members, {"released_epoch": epoch})

        # The schedule is the grid's full one; training stops once the last wanted epoch is saved.
        ctx.trainer.fit(model, members, CrossEntropy().to(ctx.device), epochs=epochs[-1], on_epoch_end=keep)
        return released


@hookimpl
def register_defenses(register):
    register(EarlyStopping)
