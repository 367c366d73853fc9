"""A label-only attack from black-box queries (after Choquette-Choo et al. 2021, "data augmentation").

For each sample the attack builds a few augmented copies of its image (itself,
its horizontal mirror and four shifts by ``shift`` pixels, wrapping around) and
asks the model for its predicted label on each. The score is the share of copies
labelled correctly: a model tends to be right on its training samples even when
they are moved a little. Only predicted labels are used, never confidences, and
only black-box queries (``ModelView.query``); one global threshold is calibrated
on the shadow models' members and non-members.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from mibench.sdk import (
    Attack,
    AttackContext,
    AttackOutput,
    ModelView,
    Params,
    ShadowNeeds,
    best_threshold,
    hookimpl,
    tuning,
    unit_inputs,
)

COPIES = 6  # itself, mirrored, shifted right, left, down, up


class LabelOnlyParams(Params):
    shift: int = Field(1, ge=1, le=8, description="Pixels each shifted copy is moved by (torch.roll, wrapping).")
    batch_size: int = tuning(256, "Samples per query batch (each sends COPIES images).", ge=1)


def augmented(images: torch.Tensor, shift: int) -> torch.Tensor:
    """COPIES x N x C x H x W copies of [0, 1] images: the images, mirrored, and shifted four ways."""
    copies = [images, images.flip(-1)]
    for dim in (-1, -2):  # width, height
        copies += [torch.roll(images, shift, dim), torch.roll(images, -shift, dim)]
    return torch.stack(copies)


class LabelOnlyAttack(Attack):
    """Label-only attack: share of augmented copies (flip, shifts) the model labels correctly; black-box queries."""

    name = "label-only-aug"
    Params = LabelOnlyParams
    needs_white_box = False
    shadow_needs = ShadowNeeds(count=1)
    query_cost = float(COPIES)  # queries per sample and model

    def scores(self, model: ModelView, indices: np.ndarray, device: torch.device) -> np.ndarray:
        """Share of correctly labelled copies, per sample of ``indices`` (one of 0, 1/COPIES, ..., 1)."""
        out = []
        for start in range(0, len(indices), self.params.batch_size):
            chunk = indices[start : start + self.params.batch_size]
            copies = augmented(unit_inputs(model.pool, chunk, device), self.params.shift)
            logits = model.query(copies.flatten(0, 1))  # COPIES * len(chunk) images, counted as queries
            correct = logits.argmax(1).view(COPIES, len(chunk)) == model.labels(chunk).view(1, -1)
            out.append(correct.double().mean(0))
        return torch.cat(out).numpy() if out else np.zeros(0)

    def run(self, ctx: AttackContext) -> AttackOutput:
        shadow_scores, membership = [], []
        for shadow in ctx.shadows:
            for indices, member in ((shadow.members, True), (shadow.nonmembers, False)):
                shadow_scores.append(self.scores(shadow, indices, ctx.device))
                membership.append(np.full(len(indices), member))
        scores = self.scores(ctx.target, ctx.eval_indices, ctx.device)
        calibration = np.concatenate(shadow_scores)
        info = {"copies": COPIES, "calibration_samples": len(calibration)}
        threshold = best_threshold(calibration, np.concatenate(membership))
        return AttackOutput(scores, threshold, "global", info)


@hookimpl
def register_attacks(register):
    register(LabelOnlyAttack)
