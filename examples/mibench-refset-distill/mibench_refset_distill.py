"""Self-distillation on a reference set: an example defense that writes its own training loop.

The training split is cut into a private part (the members) and a reference part
(:func:`carve_reference`). A teacher learns the private part with cross-entropy
and labels the reference part with soft labels, softmax(logits / tau). The
released model, a fresh network, learns the private part from its labels and the
reference part from the teacher's soft labels, in the same batches. The reference
samples are reported as neither members nor non-members: they are not in
``TrainedModel.members``.

Both networks train in :func:`train_epochs`, a loop written by hand from the
Trainer's building blocks (the grid's optimiser, learning-rate schedule, batch
size, augmentation and precision), to show them. ``ctx.trainer.fit`` with an
:class:`~mibench.sdk.Objective` and ``targets=`` would do the same.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mibench.sdk import (
    Defense,
    Params,
    TrainedModel,
    TrainingContext,
    as_index,
    carve_reference,
    hookimpl,
    predict_logits,
    progress_bar,
)


class RefsetDistillParams(Params):
    reference_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of the training split carved out as the reference set (not members)."
    )
    tau: float = Field(2.0, gt=0, description="Temperature of the teacher's soft labels on the reference set.")


def train_epochs(
    ctx: TrainingContext, model: nn.Module, indices: np.ndarray, targets: torch.Tensor, desc: str
) -> nn.Module:
    """Train ``model`` on pool samples ``indices`` with cross-entropy against ``targets``.

    ``targets`` holds one row per index: a class index, or a row of class
    probabilities (``F.cross_entropy`` takes either).
    """
    trainer = ctx.trainer
    epochs = trainer.config.epochs
    x = trainer.inputs(indices)  # staged on the device once
    targets = targets.to(ctx.device)
    optimizer = trainer.make_optimizer(trainer.prepare(model).parameters())
    n_batches = -(-len(x) // trainer.config.batch_size)
    model.train()
    with progress_bar(total=epochs * n_batches, desc=desc, unit="batch") as bar:
        for epoch in range(1, epochs + 1):  # epochs count from 1
            trainer.set_lr(optimizer, epoch)  # the grid's schedule
            for xb, yb in trainer.batches(x, targets):  # shuffled, augmented, normalised
                with trainer.autocast():
                    logits, _ = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(1)
    return model.eval()


class RefsetDistill(Defense):
    """Self-distillation on a reference set: the released model learns it from a teacher's soft labels."""

    name = "refset-distill"
    Params = RefsetDistillParams
    training_cost = 2.0  # a teacher on the private part, then a student on the whole split

    def train(self, ctx: TrainingContext) -> TrainedModel:
        p = self.params
        private, reference = carve_reference(ctx, p.reference_fraction)
        labels = ctx.pool.labels
        desc = ctx.trainer.desc

        teacher = train_epochs(ctx, ctx.build_model(), private, labels[as_index(private)], f"{desc} (teacher)")
        logits = predict_logits(teacher, ctx.pool, reference, ctx.device, ctx.trainer.config.eval_batch_size)
        soft = (logits / p.tau).softmax(1)

        hard = F.one_hot(labels[as_index(private)], ctx.num_classes).float()
        both = np.concatenate([private, reference])
        student = train_epochs(ctx, ctx.build_model(), both, torch.cat([hard, soft]), f"{desc} (student)")

        teacher_acc = (logits.argmax(1) == labels[as_index(reference)]).float().mean()
        info = {"reference_size": int(len(reference)), "teacher_reference_acc": round(float(teacher_acc), 4)}
        return TrainedModel(student, private, info)  # the reference set is not members


@hookimpl
def register_defenses(register):
    register(RefsetDistill)
