"""Plain cross-entropy training: no defense, the baseline every defense is measured against."""

from __future__ import annotations

import torch.nn.functional as F

from mibench.sdk import LossDefense, Objective, ObjectiveSpec, hookimpl


class CrossEntropy(Objective):
    def forward(self, logits, features, targets, epoch):
        return F.cross_entropy(logits, targets)


class CE(LossDefense):
    """Cross-entropy, no defense."""

    name = "ce"

    def objective(self, spec: ObjectiveSpec) -> Objective:
        return CrossEntropy()


@hookimpl
def register_defenses(register):
    register(CE)
