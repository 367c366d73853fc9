"""Flooding (Ishida et al. 2020): keep the training loss near a floor b instead of zero.

loss = |CE - b| + b: above the floor this is plain cross-entropy; below it the
gradient flips sign, so the model stops driving its training loss to zero.
"""

import torch.nn.functional as F
from pydantic import Field

from mibench.sdk import LossDefense, Objective, Params, hookimpl


class FloodingParams(Params):
    b: float = Field(0.1, ge=0, description="The flood level: the loss the model is kept near.")


class FloodingLoss(Objective):
    def __init__(self, b: float):
        super().__init__()
        self.b = b

    def forward(self, logits, features, targets, epoch):
        return (F.cross_entropy(logits, targets) - self.b).abs() + self.b


class Flooding(LossDefense):
    """Flooding: |CE - b| + b."""

    name = "flooding"
    Params = FloodingParams

    def objective(self, spec):
        return FloodingLoss(self.params.b)


@hookimpl
def register_defenses(register):
    register(Flooding)
