"""A canary audit (REFERENCE §8; Aerni, Zhang and Tramer 2024): the pool protocol with canaries in D.

``protocol: pool`` with ``pool.canaries`` set plans with this strategy. It differs from
:class:`~mibench.engine.protocols.pool.PoolProtocol` in three places only:

- its splits (:class:`~mibench.engine.protocols.canary_splits.CanarySplits`) add the
  canaries to the sample set D, and its pool (:meth:`CanaryPoolProtocol.prepare_pool`)
  appends the canaries the grid's canary plugin crafts, so every model trains and is
  attacked on the same rows;
- every attack's rows report three populations of the same scores: ``all``, ``clean``
  (the non-canary samples of D) and ``canary``; with ``base: always`` the canaries
  alone (the clean samples are IN for every model, so they have no non-members);
- validation knows what a canary audit needs (room in D, enough canaries for TPR at
  0.1% FPR, attacks that do not learn from clean non-members under ``base: always``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from mibench.config.errors import Problem
from mibench.config.plugin_config import PluginConfig
from mibench.config.shapes import data_shape
from mibench.engine.pools import splits as pool_splits
from mibench.engine.protocols.canary_splits import CanarySplits
from mibench.engine.protocols.pool import PoolProtocol, Selection
from mibench.engine.uncertainty import MIN_FALSE_POSITIVES
from mibench.sdk import CanaryContext, CanarySet, Pool
from mibench.sdk.sampling import seeded_rng


@dataclass(frozen=True)
class CanaryPoolProtocol(PoolProtocol):
    """The pool protocol with ``count`` canaries of design ``canaries`` in D; ``base``: half or always."""

    splits_type: ClassVar[type[CanarySplits]] = CanarySplits
    canaries: PluginConfig | None = None
    count: int = 0
    base: str = "half"

    def describe(self, grid) -> str:
        base = ("every sample of D IN for half of the models" if self.base == "half"
                else "every clean sample IN for every model, each canary for half (leave-one-out)")
        return super().describe(grid) + f"; {self.count} {self.canaries.label} canaries in D, {base}"

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"canaries": [self.canaries.spec(), self.count, self.base]}

    def build_splits(self, pool_size: int, split_seed: int) -> CanarySplits:
        design = self.canaries.create()
        return CanarySplits.build_canaries(pool_size, split_seed, self.models, self.dataset_fraction, self.count,
                                           design.uses_sources(), design.copies(), self.base)

    def prepare_pool(self, pool: Pool, splits: CanarySplits) -> Pool:
        """The dataset's pool with the crafted canaries appended (then each canary's repeats)."""
        design = self.canaries.create()
        rng = seeded_rng(splits.split_seed, 6)
        crafted = design.craft(CanaryContext(pool, splits.sources, self.count, rng))
        inputs, labels = self._checked(crafted, pool)
        copies = design.copies()
        inputs = torch.cat([pool.inputs, *[inputs] * copies])
        labels = torch.cat([pool.labels, *[labels] * copies])
        return Pool(inputs, labels, pool.num_classes, pool.mean, pool.std, pool.scale, pool.augment)

    def _checked(self, crafted: Any, pool: Pool) -> tuple[torch.Tensor, torch.Tensor]:
        """The crafted canaries as the pool's tensors, or an error naming the design and what is wrong."""
        name = f"canary design {self.canaries.name!r}"
        if not isinstance(crafted, CanarySet):
            raise TypeError(f"{name} returned {type(crafted).__name__} from craft(), not a mibench.sdk.CanarySet")
        inputs, labels = torch.as_tensor(crafted.inputs), torch.as_tensor(crafted.labels).long().reshape(-1)
        want = (self.count, *pool.input_shape)
        if tuple(inputs.shape) != want:
            raise ValueError(f"{name} made inputs of shape {tuple(inputs.shape)}; the grid asks for {want}")
        if len(labels) != self.count or (len(labels) and not (0 <= int(labels.min()) and
                                                               int(labels.max()) < pool.num_classes)):
            raise ValueError(f"{name} must give {self.count} labels in 0..{pool.num_classes - 1}")
        return inputs.to(pool.inputs.dtype), labels

    # ------------------------------------------------------------ validation

    def check_datasets(self, datasets: Sequence[PluginConfig]) -> tuple[list[Problem], list[str]]:
        problems, warnings = [], []
        path = ("pool", "canaries", "count")
        takes = self.canaries.create().uses_sources()
        for dataset in datasets:
            try:
                shape = data_shape(dataset)
            except Exception:  # noqa: BLE001 - the dataset's own problem, reported by the shape checks
                continue
            if shape is None:
                continue
            size = getattr(dataset.params, "pool_size", None) or shape.pool_size
            d = int(round(self.dataset_fraction * min(size, shape.pool_size)))
            if takes and self.count > d // 2:
                problems.append(Problem(path, f"{self.count} {self.canaries.name} canaries are made from samples of "
                                        f"D, and {dataset.label}'s D holds {d} (pool_size x pool.dataset_fraction); "
                                        f"at most half of D, {d // 2}, can be canaries"))
        out_canaries = self.count * (self.models - self.models // 2)  # pooled over targets: M x C x (OUT share)
        false_positives = out_canaries / 1000
        if false_positives < MIN_FALSE_POSITIVES:
            warnings.append(f"pool.canaries.count: the canaries' TPR at 0.1% FPR rests on {false_positives:g} false "
                            f"positives ({out_canaries:,} OUT canaries pooled over {self.models} targets / 1000); "
                            f"at least {MIN_FALSE_POSITIVES} are needed for it to be resolvable")
        return problems, warnings

    # ---------------------------------------------------------------------- rows

    def row_config(self, grid) -> dict[str, Any]:
        return super().row_config(grid) | {"canaries": self.canaries.spec()}

    @property
    def calibrated(self) -> bool:
        """Under ``base: always`` a reference's only non-members are canaries: no threshold rests on clean ones."""
        return self.base != "always"

    def canary_rows(self, cell) -> np.ndarray:
        return pool_splits(cell.dataset, cell.target.run.split_seed, self).canary_rows

    def populations(self, cell) -> dict[str, Selection]:
        canary_rows = self.canary_rows(cell)

        def canary(indices: np.ndarray) -> np.ndarray:
            return np.isin(indices, canary_rows)

        if self.base == "always":
            return {"canary": canary}
        return {"all": None, "clean": lambda indices: ~canary(indices), "canary": canary}
