"""Base class for attacks that threshold one score per sample, calibrated on the shadows.

A subclass defines :meth:`ThresholdAttack.score` (logits, labels -> one score per
sample, higher = member), or, when the score needs more than the model's output
(a white-box gradient), :meth:`ThresholdAttack.model_scores`. The base scores every
shadow model on its own members and non-members, calibrates a threshold per class
(or one global threshold) that maximises balanced accuracy there, and scores the
target's evaluation samples.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from mibench.sdk.attack import Attack, AttackContext, AttackOutput, ModelView
from mibench.sdk.params import Params
from mibench.sdk.thresholds import best_threshold, per_class_thresholds


class ThresholdParams(Params):
    thresholds: Literal["per-class", "global"] = Field(
        "per-class",
        description="Calibrate one threshold per class on the shadow models (the paper), or one for all.",
    )


class ThresholdAttack(Attack):
    Params: ClassVar[type[Params]] = ThresholdParams

    def score(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One membership score per row of ``logits`` (higher = member)."""
        raise NotImplementedError

    def model_scores(self, model: ModelView, indices: np.ndarray) -> np.ndarray:
        """Scores of ``model`` on pool samples ``indices``: by default :meth:`score` of its cached logits."""
        return self.score(model.logits(indices).double(), model.labels(indices)).numpy()

    def run(self, ctx: AttackContext) -> AttackOutput:
        cal_scores, cal_member, cal_labels = [], [], []
        for shadow in ctx.shadows:
            for indices, member in ((shadow.members, True), (shadow.nonmembers, False)):
                cal_scores.append(self.model_scores(shadow, indices))
                cal_member.append(np.full(len(indices), member))
                cal_labels.append(shadow.labels(indices).numpy())
        scores = self.model_scores(ctx.target, ctx.eval_indices)
        if not cal_scores:
            return AttackOutput(scores=scores)
        s, m, y = (np.concatenate(a) for a in (cal_scores, cal_member, cal_labels))
        if self.params.thresholds == "global":
            return AttackOutput(scores, best_threshold(s, m), "global")
        return AttackOutput(scores, per_class_thresholds(s, m, y, ctx.pool.num_classes), "per-class")
