"""Training losses: what a loss-only defense (:class:`~mibench.sdk.LossDefense`) supplies to the trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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
