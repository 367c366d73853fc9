"""The canary designs of Aerni, Zhang and Tramer (2024; REFERENCE §8).

- ``mislabeled``: a sample of D with its label replaced by a seeded random other class
  (their default for most defenses: a model can only fit it by memorising it);
- ``noise``: an image of seeded uniform noise with a random label (out of
  distribution: for DP-SGD and defenses that filter or down-weight hard samples);
- ``blank``: a constant image with a random label;
- ``duplicated``: a mislabeled sample inserted ``copies`` times into every training
  set that holds it (for defenses that deduplicate or down-weight repeats).

Images are made on the pool's own scale and dtype (``pool.inputs / pool.scale`` in [0, 1]).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from mibench.sdk import Canary, CanaryContext, CanaryParams, CanarySet, hookimpl, random_other_labels


def _on_pool_scale(unit: np.ndarray, pool) -> torch.Tensor:
    """Images in [0, 1] as the pool stores them (rounded for an integer dtype)."""
    values = unit * pool.scale
    if not pool.inputs.is_floating_point():
        values = np.rint(values)
    return torch.as_tensor(values).to(pool.inputs.dtype)


class MislabeledCanary(Canary):
    """A sample of D with a seeded random wrong label (Aerni et al.'s default canary)."""

    name = "mislabeled"

    def craft(self, ctx: CanaryContext) -> CanarySet:
        labels = random_other_labels(ctx.pool.labels[torch.as_tensor(ctx.sources)].numpy(), ctx.pool.num_classes,
                                     ctx.rng)
        return CanarySet(ctx.pool.inputs[torch.as_tensor(ctx.sources)].clone(), torch.as_tensor(labels))


class NoiseCanary(Canary):
    """An image of seeded uniform noise with a random label (an out-of-distribution canary)."""

    name = "noise"

    def uses_sources(self) -> bool:
        return False

    def craft(self, ctx: CanaryContext) -> CanarySet:
        shape = (ctx.count, *ctx.pool.input_shape)
        images = _on_pool_scale(ctx.rng.random(shape), ctx.pool)
        return CanarySet(images, torch.as_tensor(ctx.rng.integers(0, ctx.pool.num_classes, ctx.count)))


class BlankParams(CanaryParams):
    value: float = Field(0.0, ge=0, le=1, description="The constant pixel value, in [0, 1] (0: black).")


class BlankCanary(Canary):
    """A constant image with a random label."""

    name = "blank"
    Params = BlankParams

    def uses_sources(self) -> bool:
        return False

    def craft(self, ctx: CanaryContext) -> CanarySet:
        images = _on_pool_scale(np.full((ctx.count, *ctx.pool.input_shape), self.params.value), ctx.pool)
        return CanarySet(images, torch.as_tensor(ctx.rng.integers(0, ctx.pool.num_classes, ctx.count)))


class DuplicatedParams(CanaryParams):
    copies: int = Field(4, ge=2, le=64, description="Times each canary is inserted into a training set that "
                        "holds it.")


class DuplicatedCanary(MislabeledCanary):
    """A mislabeled sample inserted `copies` times (against defenses that deduplicate or down-weight repeats)."""

    name = "duplicated"
    Params = DuplicatedParams

    def copies(self) -> int:
        return self.params.copies


@hookimpl
def register_canaries(register):
    for cls in (MislabeledCanary, NoiseCanary, BlankCanary, DuplicatedCanary):
        register(cls)
