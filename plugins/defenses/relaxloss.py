"""RelaxLoss (Chen et al., ICLR 2022): keep the training loss near a target alpha."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from mibench.sdk import LossDefense, Objective, ObjectiveSpec, Params, hookimpl
from mibench_plugins.defenses.relax import flattened_target, relaxed, soft_cross_entropy, true_class_prob


class RelaxLossParams(Params):
    alpha: float = Field(
        0.5, gt=0, description="Target loss level. RelaxLoss code: CIFAR-10 ResNet20 1.0, VGG11-BN 0.4; "
        "CIFAR-100 ResNet20 3.0, VGG11-BN 0.5.",
    )
    upper: float = Field(1.0, gt=0, le=1, description="Clamp of p_y in the flattened target (1.0 on CIFAR: none).")


class RelaxLossObjective(Objective):
    """Paper eq. 3 with the RelaxLoss code's posterior flattening.

    Even epochs: |CE - alpha|. Odd epochs: CE while CE > alpha; below it, per sample
    (1 - correct_i) * softCE_i(g, t) - CE_i, averaged, where t is the flattened
    target (t_y = min(p_y, upper), the rest spread evenly). As in the RelaxLoss
    code, the target is not detached. Epochs count from 1 (the RelaxLoss code counts
    from 0, so its even epochs are mibench's odd ones).
    """

    def __init__(self, alpha: float, upper: float, num_classes: int) -> None:
        super().__init__()
        self.alpha, self.upper, self.num_classes = alpha, upper, num_classes

    def forward(self, logits, features, targets, epoch):
        per_sample = F.cross_entropy(logits, targets, reduction="none")
        ce = per_sample.mean()

        def flatten():
            target = flattened_target(true_class_prob(logits, targets, self.upper), targets, self.num_classes)
            wrong = (logits.argmax(1) != targets).to(logits.dtype)
            return (wrong * soft_cross_entropy(logits, target, reduction="none") - per_sample).mean()

        return relaxed(ce, self.alpha, epoch, flatten)


class RelaxLoss(LossDefense):
    """RelaxLoss: relax the loss toward alpha, with posterior flattening."""

    name = "relaxloss"
    Params = RelaxLossParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        return RelaxLossObjective(self.params.alpha, self.params.upper, spec.num_classes)


@hookimpl
def register_defenses(register):
    register(RelaxLoss)
