"""The index sets of a canary audit (REFERENCE §8): the pool protocol's, with canaries added to D.

Everything here can change a trained model, so a model key covers this module's code
(and that of :mod:`mibench.engine.protocols.splits`, which it builds on).

Rows: the dataset's pool keeps its N samples at 0..N-1; the C canaries are appended as
rows N..N+C-1 and, for a design that repeats each canary k times, its k - 1 repeats
after them (row N + C + j * C + i is repeat j of canary i). A canary made from a
sample of D takes that sample out of D (its clean version is trained on by no model
and is no population sample either, so the canary has no clean twin).

Membership: as the pool protocol, every sample of D (canaries included) is IN for
exactly floor(M/2) of the M models, at random (``base: half``); with ``base: always``
(Aerni et al.'s leave-one-out design) every clean sample of D is IN for every model,
only the canaries vary, attacks are scored on the canaries alone and the test
accuracy is measured on the population (no model trained on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mibench.engine.protocols.splits import EMPTY, PoolSplits, Split, balanced_membership
from mibench.sdk.sampling import seeded_rng as _rng


@dataclass(frozen=True)
class CanarySplits(PoolSplits):
    """A pool with canaries: D (clean samples and canaries), population, membership, canary rows."""

    base: str = "half"
    pool_size: int = 0  # the dataset's own rows; canaries start here
    canary_rows: np.ndarray = field(default_factory=lambda: EMPTY)  # the C canaries, sorted (rows pool_size..pool_size+C-1)
    repeats: np.ndarray = field(default_factory=lambda: EMPTY)  # C x (copies - 1): the rows of each canary's repeats
    sources: np.ndarray = field(default_factory=lambda: EMPTY)  # the pool sample each canary was made from, in canary order (empty: none)
    split_seed: int = 0

    @classmethod
    def build_canaries(cls, pool_size: int, split_seed: int, models: int, dataset_fraction: float, count: int,
                       uses_sources: bool, copies: int, base: str) -> "CanarySplits":
        plain = PoolSplits.build(pool_size, split_seed, models, dataset_fraction)
        clean = plain.samples
        sources = EMPTY
        if uses_sources:
            if count > len(clean) // 2:
                raise ValueError(f"{count} canaries need {count} samples of D, which holds {len(clean)}; "
                                 f"at most half of D ({len(clean) // 2}) can be canaries")
            sources = _rng(split_seed, 5).choice(clean, size=count, replace=False)
            clean = np.setdiff1d(clean, sources)
        canary_rows = np.arange(pool_size, pool_size + count, dtype=np.int64)
        repeats = (pool_size + count + np.arange(count * (copies - 1), dtype=np.int64)).reshape(copies - 1, count).T
        samples = np.concatenate([clean, canary_rows])  # sorted: every canary row is past the pool
        inside = balanced_membership(len(samples), models, _rng(split_seed, 4))
        if base == "always":
            inside[:, : len(clean)] = True
        return cls(samples, plain.population, inside, base, pool_size, canary_rows, repeats, sources, split_seed)

    @property
    def canaries(self) -> np.ndarray:  # type: ignore[override]
        """Every canary row, repeats included (none of them is ever in an accuracy)."""
        return np.concatenate([self.canary_rows, self.repeats.ravel()])

    @property
    def copies(self) -> int:
        return 1 + self.repeats.shape[1]

    @property
    def rows(self) -> int:
        """Rows of the pool with its canaries."""
        return self.pool_size + len(self.canary_rows) * self.copies

    def model(self, m: int) -> Split:
        split = super().model(m)
        in_canaries = np.isin(self.canary_rows, split.members)
        copies = np.sort(self.repeats[in_canaries].ravel())
        if self.base == "always":
            return Split(split.members, split.nonmembers, copies, scored=self.canary_rows, test=self.population)
        return Split(split.members, split.nonmembers, copies)

    def arrays(self) -> dict[str, np.ndarray]:
        return super().arrays() | {"canaries": self.canary_rows, "canary_repeats": self.repeats,
                                   "canary_sources": self.sources}
