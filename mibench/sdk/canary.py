"""The canary interface: a plugin that crafts the most vulnerable samples a canary audit plants.

A canary audit (Aerni, Zhang and Tramer 2024; REFERENCE §8) judges a defense on the
samples that need protection most rather than on random ones. Under ``protocol: pool``
the grid's ``pool.canaries`` entry names a :class:`Canary` plugin and a ``count``; the
engine picks the canaries' source samples from the sample set D (when the design takes
any, :meth:`Canary.uses_sources`), asks the plugin to :meth:`Canary.craft` the canaries
from them, and appends the crafted images to the pool as new samples. Each canary is
then a sample of D like any other (IN for exactly half of the models, balanced), except
that it never counts toward an accuracy and its metrics are reported on their own.

A source sample that became a canary leaves D and the population, so its clean version
is neither trained on nor used as a population sample beside its canary. A design that
inserts each canary several times (:meth:`Canary.copies`) trains on every copy of an IN
canary and is scored once per canary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from mibench.sdk.dataset import Pool
from mibench.sdk.params import Params, Plugin


class CanaryParams(Params):
    """Parameters every canary design accepts, on top of its own (none so far)."""


@dataclass(frozen=True)
class CanaryContext:
    """What a canary design crafts from.

    ``pool``: the dataset's clean pool; ``sources``: the pool indices of the samples it
    may turn into canaries, one per canary (empty when it takes none); ``count``: how many
    canaries to make; ``rng``: a seeded generator, the design's only source of randomness
    (the same grid crafts the same canaries on every machine).
    """

    pool: Pool
    sources: np.ndarray
    count: int
    rng: np.random.Generator


@dataclass(frozen=True)
class CanarySet:
    """Crafted canaries: ``inputs`` (count x C x H x W, on the pool's scale) and their ``labels``."""

    inputs: torch.Tensor
    labels: torch.Tensor


def random_other_labels(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """For each label a uniformly random different class (seeded): a mislabeled canary's new label."""
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes < 2:
        raise ValueError("mislabeled canaries need at least two classes")
    return (labels + rng.integers(1, num_classes, size=len(labels))) % num_classes


class Canary(Plugin):
    """A canary design: how to craft ``count`` canaries (a random label, noise, a blank image...)."""

    kind: ClassVar[str] = "canary"
    Params: ClassVar[type[Params]] = CanaryParams

    def uses_sources(self) -> bool:
        """Whether each canary is made from a sample of D (which then leaves D); False for synthetic images."""
        return True

    def copies(self) -> int:
        """How many times each canary is inserted into a training set that holds it (1: once)."""
        return 1

    def craft(self, ctx: CanaryContext) -> CanarySet:
        """The ``ctx.count`` canaries, one per source sample when the design takes sources."""
        raise NotImplementedError

