"""Moving pool samples to the device as model inputs, the same way everywhere."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from mibench.sdk.dataset import Pool
from mibench.sdk.progress import progress_bar


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


def model_batches(
    pool: Pool, indices: np.ndarray, device: torch.device, batch_size: int
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """(indices, normalised inputs, labels) of consecutive batches of pool samples, on ``device``."""
    indices = np.asarray(indices)
    normalise = Normaliser(pool, device)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        yield chunk, normalise(unit_inputs(pool, chunk, device)), pool.labels[as_index(chunk)].to(device)


def map_batches(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pool: Pool,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int,
    desc: str = "samples",
) -> np.ndarray:
    """``fn(inputs, labels)`` -> one value per sample, over pool samples ``indices`` in batches.

    ``inputs`` are the normalised model inputs of a batch (:func:`model_inputs`),
    ``labels`` its labels, both on ``device``. The values come back concatenated,
    as float64 on the host; a progress bar counts the samples.
    """
    out = []
    with progress_bar(total=len(indices), desc=desc, unit="sample") as bar:
        for chunk, inputs, labels in model_batches(pool, indices, device, batch_size):
            out.append(fn(inputs, labels).detach().double().cpu())
            bar.update(len(chunk))
    return torch.cat(out).numpy() if out else np.zeros(0)
