"""Moving pool samples to the device as model inputs, the same way everywhere."""

from __future__ import annotations

import numpy as np
import torch

from mibench.interfaces import Pool


def as_index(indices: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(indices), dtype=torch.long)


def unit_inputs(pool: Pool, indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """Pool inputs at ``indices`` as [0, 1] floats on ``device`` (not normalised)."""
    return pool.inputs[as_index(indices)].to(device).float().div_(pool.scale)


class Normaliser:
    """Per-channel ``(x - mean) / std`` with the pool's statistics, on one device."""

    def __init__(self, pool: Pool, device: torch.device) -> None:
        self.mean = torch.tensor(pool.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(pool.std, device=device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def model_inputs(pool: Pool, indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """Normalised model inputs for pool samples ``indices`` (no augmentation)."""
    return Normaliser(pool, device)(unit_inputs(pool, indices, device))
