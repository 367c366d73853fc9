"""Seeded, stratified sampling of pool indices: subsamples and reference-set carve-outs."""

from __future__ import annotations

import numpy as np

from mibench.sdk.batches import as_index
from mibench.sdk.defense import TrainingContext


def seeded_rng(*key: int) -> np.random.Generator:
    """A numpy generator seeded by a tuple of integers (stable across processes and machines)."""
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def stratified_subsample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` indices whose class proportions match ``labels``' (largest remainders)."""
    labels = np.asarray(labels)
    if size >= len(labels):
        return np.arange(len(labels))
    rng = seeded_rng(seed, 7)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    take = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - take), kind="stable")[: size - take.sum()]:
        take[c] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))



def carve_reference(job: TrainingContext, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``job.train_indices`` into (private, reference), both sorted pool indices.

    REFERENCE §1: a defense that needs a reference set pays for it with training
    data. Report ``private`` as the :class:`TrainedModel`'s members: the carved-out
    samples are then neither members nor non-members in the evaluation.

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
