"""The shared training loop, used by every defense that does not drive training itself.

The loop is kept as close to a bare PyTorch loop as possible (benchmarks/overhead.py
measures the difference): the training subset is materialised once on the device,
batches are index slices of it, and nothing crosses back to the host per batch
except what the progress bar shows once per epoch.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from mibench.sdk.training_config import TrainingConfig
from mibench.sdk.batches import Normaliser, as_index, model_batches, unit_inputs
from mibench.sdk.objective import Objective
from mibench.sdk.dataset import Pool
from mibench.sdk.progress import progress_bar

EpochCallback = Callable[[int, nn.Module], None]


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or non-finite weights; no model of it is stored."""

    @classmethod
    def at_epoch(cls, epoch: int, loss: float) -> "TrainingDiverged":
        """The error of an epoch whose summed loss is not finite (one model's, alone or in a stack)."""
        return cls(f"training diverged at epoch {epoch} (loss {loss})")


class Trainer:
    """Runs epochs of mini-batch training with the grid's training settings.

    :meth:`fit` builds its optimiser with :meth:`make_optimizer` and draws its
    batches from :meth:`batches`; a defense that trains differently (DP-SGD) can
    subclass the trainer, override those two, and keep the rest of the loop.
    """

    def __init__(
        self,
        config: TrainingConfig,
        pool: Pool,
        device: torch.device,
        seed: int,
        desc: str = "train",
    ) -> None:
        self.config = config
        self.pool = pool
        self.device = device
        self.seed = seed
        self.desc = desc
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.normalise = Normaliser(pool, device)
        self.channels_last = device.type == "cuda" and config.channels_last

    def prepare(self, model: nn.Module) -> nn.Module:
        """Put ``model`` in the memory format the batches come in (channels_last on CUDA)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    # ----------------------------------------------------------------- building blocks

    def make_optimizer(self, params, config=None) -> torch.optim.Optimizer:
        cfg = config or self.config.optimizer
        if cfg.name == "sgd":
            return torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
            )
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def set_lr(self, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        lr = self.config.schedule.lr_at(epoch, self.config.optimizer.lr, self.config.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def inputs(self, indices: np.ndarray) -> torch.Tensor:
        """Pool inputs at ``indices`` on the device, staged for :meth:`batch`.

        Normalised once here when the pool has no augmentation (the hot loop then
        only slices); left in [0, 1] when it has, since augmentation (zero padding
        is black) works on images and :meth:`batch` normalises after it.
        """
        x = unit_inputs(self.pool, indices, self.device)
        return x if self.pool.augment is not None else self.normalise(x)

    def batches(
        self,
        x: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int | None = None,
        augment: bool = True,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled, augmented, normalised batches of ``x`` (from :meth:`inputs`)."""
        bs = batch_size or self.config.batch_size
        perm = torch.randperm(len(x), generator=self.generator).to(self.device)
        for start in range(0, len(x), bs):
            yield self.batch(x, targets, perm[start : start + bs], augment)

    def batch(
        self, x: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor, augment: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows ``idx`` of ``x`` (from :meth:`inputs`), augmented and normalised, with their targets.

        :meth:`batches` draws ``idx`` by shuffling; a trainer that samples batches
        another way (DP-SGD's Poisson sampling) overrides :meth:`batches` and calls this.
        """
        xb = x[idx]
        if self.pool.augment is not None:
            if augment:
                xb = self.pool.augment(xb, self.generator)
            xb = self.normalise(xb)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, targets[idx]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------------- the loop

    def fit(
        self,
        model: nn.Module,
        indices: np.ndarray,
        objective: Objective,
        *,
        targets: torch.Tensor | None = None,
        epochs: int | None = None,
        on_epoch_end: EpochCallback | None = None,
        desc: str | None = None,
    ) -> nn.Module:
        """Train ``model`` on pool samples ``indices`` with ``objective``.

        ``targets`` defaults to the pool labels; a defense may pass soft targets
        (one row per index). ``on_epoch_end(epoch, model)`` runs after each epoch
        (1-based), for checkpoints. Raises :class:`TrainingDiverged` at the end of
        the first epoch whose summed loss is not finite.
        """
        epochs = epochs or self.config.epochs
        x = self.inputs(indices)
        if targets is None:
            targets = self.pool.labels[as_index(indices)]
        targets = targets.to(self.device)
        objective = objective.to(self.device)
        optimizer = self.make_optimizer(self.prepare(model).parameters())
        n_batches = -(-len(x) // self.config.batch_size)
        model.train()
        with progress_bar(total=epochs * n_batches, desc=desc or self.desc, unit="batch") as bar:
            for epoch in range(1, epochs + 1):
                self.set_lr(optimizer, epoch)
                loss_sum = torch.zeros((), device=self.device)
                for xb, yb in self.batches(x, targets):
                    with self.autocast():
                        logits, features = model(xb)
                    loss = objective(logits.float(), features.float(), yb, epoch)
                    optimizer.zero_grad(set_to_none=True)
                    objective.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    objective.step()
                    loss_sum += loss.detach()
                    bar.update(1)
                # The one host sync of the epoch: it feeds the progress bar and the divergence check.
                epoch_loss = loss_sum.item()
                if not math.isfinite(epoch_loss):
                    raise TrainingDiverged.at_epoch(epoch, epoch_loss)
                bar.set_postfix(epoch=epoch, loss=f"{epoch_loss / n_batches:.4f}", refresh=False)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, model)
        model.eval()
        return model


@torch.no_grad()
def predict_logits(
    model: nn.Module, pool: Pool, indices: np.ndarray, device: torch.device, batch_size: int = 1024
) -> torch.Tensor:
    """Logits of ``model`` (eval mode) on pool samples ``indices``, as float32 on the CPU."""
    model.eval()
    out = []
    for _, inputs, _ in model_batches(pool, indices, device, batch_size):
        logits, _ = model(inputs)
        out.append(logits.float().cpu())
    if not out:
        return torch.zeros((0, pool.num_classes))
    return torch.cat(out)
