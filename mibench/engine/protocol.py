"""The data protocols, as pool indices.

``paper`` (REFERENCE §1):
pool -> target half | shadow half (seeded by the grid's split_seed);
target half -> target train (members) | target test (non-members);
shadow half -> for shadow i, its own train | test, re-split with seed i.

``pool`` (REFERENCE §7, Carlini et al. 2022): a seeded share of the pool is the
sample set D, the rest the population (no model trains on it). M models each train
on a random half of D, balanced so that every sample is IN for exactly floor(M/2)
of them: for each sample an independent random ranking of the models, the first
floor(M/2) IN. Model m's non-members are the rest of D, so every model is in turn a
target whose evaluation samples are D, and the other M - 1 are its reference models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mibench.sdk.sampling import seeded_rng as _rng


def halve(indices: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``indices`` and cut them into two halves (the first gets the odd one)."""
    perm = rng.permutation(np.asarray(indices))
    cut = (len(perm) + 1) // 2
    return np.sort(perm[:cut]), np.sort(perm[cut:])


@dataclass(frozen=True)
class Split:
    """A model's training data (members) and held-out data (non-members)."""

    members: np.ndarray
    nonmembers: np.ndarray

    def check_disjoint(self) -> None:
        if np.intersect1d(self.members, self.nonmembers).size:
            raise AssertionError("members and non-members intersect")


@dataclass(frozen=True)
class PoolLayout:
    """The pool protocol's shape: ``models`` models on ``dataset_fraction`` of the pool."""

    models: int
    dataset_fraction: float


def pool_membership(sample_count: int, models: int, rng: np.random.Generator) -> np.ndarray:
    """models x sample_count booleans, each column with exactly models // 2 True (IN) at random rows."""
    ranks = rng.random((models, sample_count)).argsort(0).argsort(0)
    return ranks < models // 2


@dataclass(frozen=True)
class ModelPool:
    """The pool protocol's splits: sample set D, population, and which model trained on which sample."""

    samples: np.ndarray  # D, sorted pool indices
    population: np.ndarray  # the rest of the pool, sorted
    inside: np.ndarray  # models x len(samples): model m trained on samples[i]

    @classmethod
    def build(cls, pool_size: int, split_seed: int, layout: PoolLayout) -> "ModelPool":
        if layout.models < 2:
            raise ValueError("a model pool needs at least 2 models")
        perm = _rng(split_seed, 3).permutation(pool_size)
        cut = int(round(layout.dataset_fraction * pool_size))
        if not 2 <= cut <= pool_size:
            raise ValueError(f"pool.dataset_fraction {layout.dataset_fraction} leaves {cut} of {pool_size} samples")
        samples, population = np.sort(perm[:cut]), np.sort(perm[cut:])
        return cls(samples, population, pool_membership(len(samples), layout.models, _rng(split_seed, 4)))

    def split(self, m: int) -> Split:
        if not 0 <= m < len(self.inside):
            raise ValueError(f"pool model {m} does not exist (the pool has {len(self.inside)})")
        split = Split(self.samples[self.inside[m]], self.samples[~self.inside[m]])
        split.check_disjoint()
        return split


@dataclass(frozen=True)
class Protocol:
    """All splits of one pool for one split seed (and, for the pool protocol, one layout)."""

    target_half: np.ndarray
    shadow_half: np.ndarray
    target: Split
    model_pool: ModelPool | None = None

    @property
    def population(self) -> np.ndarray:
        """Pool indices no evaluated model trained on: where reference attacks draw population samples."""
        return self.shadow_half if self.model_pool is None else self.model_pool.population

    @classmethod
    def build(cls, pool_size: int, split_seed: int, layout: PoolLayout | None = None) -> "Protocol":
        if layout is not None:
            model_pool = ModelPool.build(pool_size, split_seed, layout)
            empty = np.zeros(0, dtype=np.int64)
            return cls(model_pool.samples, empty, model_pool.split(0), model_pool)
        target_half, shadow_half = halve(np.arange(pool_size), _rng(split_seed, 0))
        members, nonmembers = halve(target_half, _rng(split_seed, 1))
        protocol = cls(target_half, shadow_half, Split(members, nonmembers))
        protocol.target.check_disjoint()
        if np.intersect1d(target_half, shadow_half).size:
            raise AssertionError("target and shadow data intersect")
        return protocol

    def shadow(self, i: int) -> Split:
        """Shadow model i's split: the shadow half re-split 50/50 with seed i."""
        members, nonmembers = halve(self.shadow_half, _rng(i, 2))
        split = Split(members, nonmembers)
        split.check_disjoint()
        return split

    def split_for(self, role: str) -> Split:
        """``"target"``, ``"shadow-<i>"`` (paper) or ``"pool-<m>"`` (pool)."""
        if role.startswith("pool-"):
            if self.model_pool is None:
                raise ValueError(f"model role {role!r} needs the pool protocol")
            return self.model_pool.split(int(role.split("-", 1)[1]))
        if role == "target":
            return self.target
        if role.startswith("shadow-"):
            return self.shadow(int(role.split("-", 1)[1]))
        raise ValueError(f"unknown model role {role!r}")
