"""Base class for attacks that threshold one signal per sample, calibrated on the reference models.

A subclass defines :meth:`ThresholdAttack.signal` (logits, labels -> one number per
sample, higher = member), or, when the signal needs more than the model's output (a
white-box gradient), :meth:`ThresholdAttack.model_signal`. The decision rule is a
threshold per class (or one global threshold) that maximises balanced accuracy on
the reference models' own members and non-members
(:func:`~mibench.sdk.calibration.calibration_samples`); the scores are the target's
signals on its evaluation samples.

0.2 plugins that define ``score`` and ``model_scores`` keep working until 0.4, with a
DeprecationWarning.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from mibench.sdk.attack import Attack, AttackContext, AttackOutput, ModelView, deprecated, overrides
from mibench.sdk.calibration import calibration_samples
from mibench.sdk.checks import model_signals
from mibench.sdk.params import Params
from mibench.sdk.thresholds import best_threshold, per_class_thresholds


class ThresholdParams(Params):
    thresholds: Literal["per-class", "global"] = Field(
        "per-class",
        description="Calibrate one threshold per class on the reference models (the paper), or one for all.",
    )


class ThresholdAttack(Attack):
    Params: ClassVar[type[Params]] = ThresholdParams

    def signal(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One membership signal per row of ``logits`` (higher = member)."""
        if overrides(self, "score", ThresholdAttack):
            deprecated(f"{type(self).__name__}.score", "signal(logits, labels)")
            return self.score(logits, labels)
        raise NotImplementedError

    def model_signal(self, model: ModelView, indices: np.ndarray) -> np.ndarray:
        """Signals of ``model`` on pool samples ``indices``: by default :meth:`signal` of its cached logits."""
        if overrides(self, "model_scores", ThresholdAttack):
            deprecated(f"{type(self).__name__}.model_scores", "model_signal(model, indices)")
            return np.asarray(self.model_scores(model, indices))
        return np.asarray(self.signal(model.logits(indices).double(), model.labels(indices)))

    def run(self, ctx: AttackContext) -> AttackOutput:
        scores = model_signals(self, ctx.target, ctx.eval_indices)
        samples = calibration_samples(ctx.references)
        if not samples:
            return AttackOutput(scores=scores)
        s = np.concatenate([model_signals(self, c.model, c.indices) for c in samples])
        m = np.concatenate([c.member for c in samples])
        y = np.concatenate([c.model.labels(c.indices).numpy() for c in samples])
        if self.params.thresholds == "global":
            return AttackOutput(scores, best_threshold(s, m), "global")
        return AttackOutput(scores, per_class_thresholds(s, m, y, ctx.pool.num_classes), "per-class")
