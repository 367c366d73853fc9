"""Regularisers that only change the loss: label smoothing and the confidence penalty."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from mibench.sdk import LossDefense, Objective, ObjectiveSpec, Params, hookimpl, softmax_entropy


class LabelSmoothingParams(Params):
    epsilon: float = Field(0.1, ge=0, lt=1, description="Smoothing mass spread over all classes (RelaxLoss: 0.1).")


class SmoothedCrossEntropy(Objective):
    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, logits, features, targets, epoch):
        # target (1 - eps) * one_hot + eps / C, as in the RelaxLoss and CRL codes
        return F.cross_entropy(logits, targets, label_smoothing=self.epsilon)


class LabelSmoothing(LossDefense):
    """Label smoothing: cross-entropy against (1 - epsilon) one-hot + epsilon / C."""

    name = "label-smoothing"
    Params = LabelSmoothingParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        return SmoothedCrossEntropy(self.params.epsilon)


class ConfidencePenaltyParams(Params):
    beta: float = Field(0.1, ge=0, description="Weight of the entropy bonus (RelaxLoss: 0.1).")


class PenalisedCrossEntropy(Objective):
    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, logits, features, targets, epoch):
        return F.cross_entropy(logits, targets) - self.beta * softmax_entropy(logits).mean()


class ConfidencePenalty(LossDefense):
    """Confidence penalty (Pereyra et al. 2017): CE - beta * H(p)."""

    name = "confidence-penalty"
    Params = ConfidencePenaltyParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        return PenalisedCrossEntropy(self.params.beta)


@hookimpl
def register_defenses(register):
    register(LabelSmoothing)
    register(ConfidencePenalty)
