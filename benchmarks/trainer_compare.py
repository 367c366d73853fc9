"""Shared by overhead.py and throughput.py: time mibench's Trainer against a bare loop.

The bare loop is what a careful researcher writes by hand for the same job: the
training tensor already normalised on the device, a random permutation per epoch,
index slices as batches, the same optimiser, precision and memory format. Both are
timed in one process after a warm-up run each, alternating which goes first.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mibench.sdk.training_config import TrainingConfig
from mibench.sdk.dataset import Pool
from mibench.sdk.trainer import Trainer
from mibench_plugins.defenses.ce import CrossEntropy


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model, x, y, config: TrainingConfig, device: torch.device, seed: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=config.optimizer.lr, momentum=config.optimizer.momentum,
                          weight_decay=config.optimizer.weight_decay)
    channels_last = device.type == "cuda" and config.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.precision == "bf16"
                else contextlib.nullcontext())
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(config.epochs):
        perm = torch.randperm(len(x), generator=gen).to(device)
        for i in range(0, len(x), config.batch_size):
            idx = perm[i : i + config.batch_size]
            with autocast:
                logits, _ = model(x[idx])
            loss = F.cross_entropy(logits.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


@dataclass
class Comparison:
    bare_s: float
    mibench_s: float
    images: int

    @property
    def ratio(self) -> float:
        return self.mibench_s / self.bare_s

    def report(self) -> str:
        return "\n".join([
            f"bare loop : {self.bare_s:8.3f} s  ({self.images / self.bare_s:9.1f} images/s)",
            f"mibench   : {self.mibench_s:8.3f} s  ({self.images / self.mibench_s:9.1f} images/s)",
            f"ratio mibench / bare = {self.ratio:.3f}",
        ])


def compare(model: torch.nn.Module, pool: Pool, indices: np.ndarray, config: TrainingConfig,
            device: torch.device, repeats: int = 3) -> Comparison:
    """Median times of both loops training copies of ``model`` on ``pool[indices]``."""
    idx = torch.as_tensor(indices)
    mean = torch.tensor(pool.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(pool.std, device=device).view(1, -1, 1, 1)
    x = (pool.inputs[idx].to(device).float() / pool.scale - mean) / std
    y = pool.labels[idx].to(device)
    runners = {
        "bare": lambda m: bare_loop(m, x, y, config, device, seed=0),
        "mibench": lambda m: Trainer(config, pool, device, seed=0).fit(m, indices, CrossEntropy()),
    }
    for run in runners.values():  # warm-up: allocations, cuDNN autotuning
        run(copy.deepcopy(model).to(device))
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(repeats):
        for name in (list(runners) if r % 2 == 0 else list(reversed(runners))):
            m = copy.deepcopy(model).to(device)
            _sync(device)
            start = time.perf_counter()
            runners[name](m)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return Comparison(statistics.median(times["bare"]), statistics.median(times["mibench"]),
                      len(indices) * config.epochs)
