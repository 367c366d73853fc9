"""The reference models' own samples, labelled: what every calibrated attack learns its decision from.

A reference model knows its splits, so each of its members (label True) and
non-members (False) is a labelled example of how a model treats training data. The
threshold attacks fit their thresholds on these, the NN attack its classifier, the
label-only attack its cut-off; :func:`calibration_samples` is the one place that
walks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mibench.sdk.attack import ReferenceView
from mibench.sdk.sampling import stratified_subsample


@dataclass(frozen=True)
class CalibrationSamples:
    """One reference model's labelled samples: pool ``indices`` and whether each is a ``member``."""

    model: ReferenceView
    indices: np.ndarray
    member: np.ndarray


def calibration_samples(references: Sequence[ReferenceView], per_model: int | None = None,
                        seed: int = 0) -> list[CalibrationSamples]:
    """Each reference model's members then non-members, in that order.

    ``per_model``: at most this many samples of each model, a seeded draw stratified by
    membership (so a large split costs a fixed number of queries); None: all of them.
    """
    out = []
    for model in references:
        indices = np.concatenate([model.members, model.nonmembers]).astype(np.int64)
        member = np.r_[np.ones(len(model.members), bool), np.zeros(len(model.nonmembers), bool)]
        if per_model is not None:
            keep = stratified_subsample(member, per_model, seed)
            indices, member = indices[keep], member[keep]
        out.append(CalibrationSamples(model, indices, member))
    return out
