"""Label-only membership inference by data augmentation (Choquette-Choo et al. 2021, "Label-Only
Membership Inference Attacks", REFERENCE §7).

The attacker sees predicted labels only. For each sample x with label y it queries the
model on K augmented copies of x: the image and its horizontal mirror, each shifted by
every (dx, dy) in [-r, r]^2 (r = ``shift_radius``; the unshifted image is (0, 0)), so
K = 2 * (2r + 1)^2: 18 for r = 1, 50 for r = 2, 98 for r = 3, 162 for r = 4. A shift
moves the content and fills the vacated border with zeros (zero padding, as the
paper's pad-and-crop does, not a wrap-around roll). The score is the number of copies
the model labels y (0..K; higher = member): a model tends to stay right on its own
training samples when they are moved a little.

Only black-box queries are used (``ModelView.query`` on [0, 1] images, from
``unit_inputs``); the target's view counts them, K per evaluation sample, and the
engine reports the total as ``target_queries``. ``query_cost`` declares the default
r = 1's 18 passes per sample and model; a larger radius costs proportionally more.

Threshold: one global threshold maximising balanced accuracy (``best_threshold``) on
the shadow models' own members and non-members, scored the same way. To bound the
cost, only the first ``calibration_models`` shadows are used, each on a seeded
subsample of ``calibration_samples`` of its members and non-members, stratified by
membership (seed ``ctx.seed``).
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
    best_threshold,
    calibration_samples,
    hookimpl,
    tuning,
    unit_inputs,
)
from mibench_plugins.attacks.views import shifted, square_views

MAX_RADIUS = 4


class LabelOnlyParams(Params):
    shift_radius: int = Field(
        1, ge=1, le=MAX_RADIUS, description="r: copies are shifted by every (dx, dy) in [-r, r]^2, each also mirrored."
    )
    calibration_models: int = Field(2, ge=1, description="Calibrate the threshold on the first this many shadows.")
    calibration_samples: int = Field(
        2000, ge=2, description="Members and non-members per calibration shadow (a seeded subsample, stratified)."
    )
    batch_size: int = tuning(256, "Samples per query batch (one query per augmentation).", ge=1)


def augmentations(radius: int) -> list[tuple[bool, int, int]]:
    """The K = 2 (2r + 1)^2 augmentations (mirrored, dx, dy): each shift with and without a mirror."""
    return square_views(radius)


class LabelOnlyAttack(Attack):
    """Label-only (Choquette-Choo et al. 2021): how many of 2(2r+1)^2 flipped/shifted copies keep the true label."""

    name = "label-only"
    Params = LabelOnlyParams
    query_cost = float(len(augmentations(1)))  # 18 at the default shift_radius 1 (50 at r = 2)

    def correct_copies(self, model: ModelView, indices: np.ndarray, device: torch.device) -> np.ndarray:
        """Per sample of ``indices``, how many augmented copies ``model`` labels correctly (float64)."""
        indices = np.asarray(indices, dtype=np.int64)
        counts = np.zeros(len(indices))
        for start in range(0, len(indices), self.params.batch_size):
            chunk = indices[start : start + self.params.batch_size]
            images = unit_inputs(model.pool, chunk, device)
            sources = {False: images, True: images.flip(-1)}  # each mirrored once per batch
            labels = model.labels(chunk).cpu()
            for mirror, dx, dy in augmentations(self.params.shift_radius):
                predicted = model.query(shifted(sources[mirror], dx, dy)).argmax(1)
                counts[start : start + len(chunk)] += (predicted == labels).numpy()
        return counts

    def run(self, ctx: AttackContext) -> AttackOutput:
        if not ctx.references:
            raise ValueError(f"attack {self.name!r} needs at least 1 reference model, got 0")
        samples = calibration_samples(ctx.references[: self.params.calibration_models],
                                      per_model=self.params.calibration_samples, seed=ctx.seed)
        calibration = np.concatenate([self.correct_copies(s.model, s.indices, ctx.device) for s in samples])
        threshold = best_threshold(calibration, np.concatenate([s.member for s in samples]))
        info = {"copies": len(augmentations(self.params.shift_radius)), "calibration_samples": len(calibration)}
        return AttackOutput(self.correct_copies(ctx.target, ctx.eval_indices, ctx.device), threshold, "global", info)


@hookimpl
def register_attacks(register):
    register(LabelOnlyAttack)
