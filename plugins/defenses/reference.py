"""The reference set of AdvReg and DMP, carved out of the defense's own training split.

REFERENCE §1: a defense that needs a reference set pays for it with training data.
The carved-out samples are neither members nor non-members in the evaluation; the
defense reports the rest of its split as its members.
"""

from __future__ import annotations

import numpy as np

from mibench.data import as_index
from mibench.interfaces import TrainingJob
from mibench.splits import stratified_subsample


def carve_reference(job: TrainingJob, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``job.train_indices`` into (private, reference), both sorted pool indices.

    The reference set holds ``fraction`` of the split (at least one sample, and at
    least one is left private), with the split's class proportions, seeded by
    ``job.seed`` (the CRL code seeds its carve-out per model the same way).
    """
    train = np.asarray(job.train_indices)
    if len(train) < 2:
        raise ValueError(f"a reference set needs a training split of 2 or more samples, got {len(train)}")
    size = min(max(round(fraction * len(train)), 1), len(train) - 1)
    labels = job.pool.labels[as_index(train)].numpy()
    reference = np.sort(train[stratified_subsample(labels, size, job.seed)])
    return np.setdiff1d(train, reference), reference
