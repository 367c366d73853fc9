"""The dataset interface: a plugin that loads a pool of labelled images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from pydantic import Field

from mibench.sdk.params import Params, Plugin


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Pool:
    """All of a dataset's official train and test data, merged (REFERENCE §1).

    ``inputs`` is N x C x H x W; ``inputs / scale`` lies in [0, 1]. The engine
    normalises with ``mean`` and ``std`` per channel. ``augment``, when set, is
    applied to [0, 1] float batches at training time only, with the trainer's
    random generator, and must work on whatever device the batch is on.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0
    augment: Augment | None = None

    def __post_init__(self) -> None:
        if self.inputs.ndim != 4:
            raise ValueError(f"pool inputs must be N x C x H x W, got shape {tuple(self.inputs.shape)}")
        if len(self.inputs) != len(self.labels):
            raise ValueError("pool inputs and labels differ in length")
        channels = self.inputs.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values, one per channel")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.inputs.shape[1:]
        return (int(c), int(h), int(w))


class DatasetParams(Params):
    """Parameters every dataset accepts, on top of its own."""

    pool_size: int | None = Field(
        None, ge=20, description="Use a stratified random subsample of this many pool samples."
    )
    pool_seed: int = Field(0, ge=0, description="Seed of the pool subsample.")


@dataclass(frozen=True)
class DataShape:
    """What a dataset holds, known without loading it (for plans and estimates)."""

    input_shape: tuple[int, int, int]
    num_classes: int
    pool_size: int


class Dataset(Plugin):
    """A source of labelled images: its pool, classes, shape and normalisation."""

    kind: ClassVar[str] = "dataset"
    Params: ClassVar[type[Params]] = DatasetParams

    def load_pool(self) -> Pool:
        """Return the full pool (official train and test sets merged)."""
        raise NotImplementedError

    def shape(self) -> DataShape | None:
        """Input shape, classes and full pool size without loading the data; None if unknown."""
        return None

    def missing_data(self) -> str | None:
        """A message saying how to get the data when it is not available, else None.

        ``mibench validate`` shows it as a warning; ``mibench run`` stops on it.
        """
        return None
