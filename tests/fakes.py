"""Stand-ins for ModelAccess, so attacks run on planted outputs or tiny modules, with no store."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from mibench.sdk.attack import AttackContext
from mibench.sdk.dataset import Pool
from mibench.sdk.trainer import predict_logits

CPU = torch.device("cpu")


class FakeAccess:
    """A model as an attack sees it: members, non-members, logits, labels and (white box) the module.

    Logits come from ``logits_fn(indices)`` or, when a ``module`` is given, from the module.
    """

    def __init__(
        self,
        pool: Pool,
        members: np.ndarray,
        nonmembers: np.ndarray,
        logits_fn: Callable[[np.ndarray], torch.Tensor] | None = None,
        module: nn.Module | None = None,
        white_box: bool = True,
        excluded: np.ndarray = (),
    ) -> None:
        self.pool = pool
        self.members = np.asarray(members, dtype=np.int64)
        self.nonmembers = np.asarray(nonmembers, dtype=np.int64)
        self.excluded = np.asarray(excluded, dtype=np.int64)
        self._logits_fn = logits_fn
        self._module = module
        self.white_box = white_box
        self.device = CPU
        self.queries: list[int] = []  # how many samples each logits() call asked for

    def module(self) -> nn.Module:
        if not self.white_box or self._module is None:
            raise PermissionError("black-box access only")
        return self._module.eval()

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        self.queries.append(len(indices))
        if self._logits_fn is not None:
            return self._logits_fn(indices).float()
        return predict_logits(self._module, self.pool, indices, CPU)

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        return self.pool.labels[torch.as_tensor(np.asarray(indices, dtype=np.int64))]


def context(target: FakeAccess, shadows: list[FakeAccess], population: np.ndarray = (), seed: int = 0) -> AttackContext:
    """The target's evaluation samples in pool order, as the engine gives them."""
    return AttackContext(pool=target.pool, target=target, references=shadows, device=CPU, seed=seed,
                         eval_indices=np.sort(np.concatenate([target.members, target.nonmembers])),
                         population=np.asarray(population, dtype=np.int64))


def membership(ctx: AttackContext, target: FakeAccess) -> np.ndarray:
    """Whether each of ``ctx.eval_indices`` is a member of ``target`` (what the engine knows, not the attack)."""
    return np.isin(ctx.eval_indices, target.members)


def label_pool(labels: np.ndarray, num_classes: int) -> Pool:
    """A pool of blank 1x1 images with the given labels (for attacks that only read logits)."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return Pool(torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8), labels, num_classes, (0.0,), (1.0,))


def table_logits(rows: dict[int, list[float]]) -> Callable[[np.ndarray], torch.Tensor]:
    """logits_fn that looks each index up in ``rows``."""
    return lambda indices: torch.tensor([rows[int(i)] for i in indices], dtype=torch.float64)
