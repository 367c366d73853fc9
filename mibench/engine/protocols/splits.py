"""The index sets of the built-in protocols, and what an attack sees of them.

Everything here can change a trained model or an attack's scores, so a model key
covers this module's code (:meth:`Splits.code`, via
:meth:`~mibench.engine.protocols.base.Protocol.identity`); the strategies beside it
(validation, planning, rows) can be edited without retraining anything.

``paper`` (REFERENCE §1): pool -> target half | shadow half (seeded by the grid's
split_seed); target half -> target train (members) | target test (non-members); shadow
half -> for shadow i, its own train | test, re-split with seed i.

``pool`` (REFERENCE §7, Carlini et al. 2022): a seeded share of the pool is the sample
set D, the rest the population (no model trains on it). M models each train on a
random half of D, balanced so that every sample is IN for exactly floor(M/2) of them:
for each sample an independent random ranking of the models, the first floor(M/2)
IN. Model m's non-members are the rest of D, so every model is in turn a target
whose evaluation samples are D, and the other M - 1 are its reference models.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mibench.registry.code import code_digest
from mibench.sdk.attack import ReferenceRules
from mibench.sdk.sampling import seeded_rng as _rng


@dataclass(frozen=True)
class Role:
    """What a model is in its protocol: ``kind`` and, for one of many, ``index``.

    ``str(role)`` ("target", "shadow-3", "pool-3") is what model keys hash and logs
    show; nothing parses it back. ``reference``: the model only serves attacks as a
    reference (a shadow), never as a target.
    """

    kind: str
    index: int | None = None
    reference: bool = False

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}-{self.index}"


def halve(indices: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``indices`` and cut them into two halves (the first gets the odd one)."""
    perm = rng.permutation(np.asarray(indices))
    cut = (len(perm) + 1) // 2
    return np.sort(perm[:cut]), np.sort(perm[cut:])


EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Split:
    """A model's training data (members) and held-out data (non-members).

    Designs with canaries add three optional sets: ``copies``, pool rows trained on
    beside the members but never scored (the repeats of a duplicated canary);
    ``scored``, the samples attacks are scored on when not every member and non-member
    is (None: all of them); ``test``, the held-out samples of the test accuracy when
    they are not the non-members (None: the non-members).
    """

    members: np.ndarray
    nonmembers: np.ndarray
    copies: np.ndarray = field(default_factory=lambda: EMPTY)
    scored: np.ndarray | None = None
    test: np.ndarray | None = None

    @property
    def training(self) -> np.ndarray:
        """Every pool row the model trains on: its members and the copies of those that repeat."""
        return np.sort(np.concatenate([self.members, self.copies])) if len(self.copies) else self.members

    def check_disjoint(self) -> None:
        if np.intersect1d(self.members, self.nonmembers).size:
            raise AssertionError("members and non-members intersect")


class Splits:
    """A protocol's index sets on one pool: each role's split, the population, the attack view."""

    population: np.ndarray  # pool indices no evaluated model trained on (reference attacks' z samples)
    canaries: np.ndarray = EMPTY  # pool rows that are canaries (their repeats included): never in an accuracy

    def split(self, role: Role) -> Split:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The index sets saved beside the results (``store/splits``), by name."""
        raise NotImplementedError

    def attack_view(self) -> dict[str, Any]:
        """Fields of :class:`~mibench.sdk.AttackContext` this design sets: population samples, reference rules."""
        return {"population": self.population}

    @classmethod
    def code(cls) -> str:
        """Digest of the modules that define these splits and the classes they build on (part of every model key)."""
        return code_digest({c.__module__: Path(inspect.getfile(c)) for c in cls.__mro__
                            if isinstance(c, type) and issubclass(c, Splits)})


def _unknown(role: Role) -> ValueError:
    return ValueError(f"unknown model role {str(role)!r}")


@dataclass(frozen=True)
class PaperSplits(Splits):
    """The paper's protocol: target half (members | non-members) and shadow half (re-split per shadow)."""

    target_half: np.ndarray
    shadow_half: np.ndarray
    target: Split
    shadow_count: int = 0

    @classmethod
    def build(cls, pool_size: int, split_seed: int, shadow_count: int = 0) -> "PaperSplits":
        target_half, shadow_half = halve(np.arange(pool_size), _rng(split_seed, 0))
        members, nonmembers = halve(target_half, _rng(split_seed, 1))
        splits = cls(target_half, shadow_half, Split(members, nonmembers), shadow_count)
        splits.target.check_disjoint()
        if np.intersect1d(target_half, shadow_half).size:
            raise AssertionError("target and shadow data intersect")
        return splits

    @property
    def population(self) -> np.ndarray:  # type: ignore[override]
        return self.shadow_half

    def shadow(self, i: int) -> Split:
        """Shadow model i's split: the shadow half re-split 50/50 with seed i."""
        members, nonmembers = halve(self.shadow_half, _rng(i, 2))
        split = Split(members, nonmembers)
        split.check_disjoint()
        return split

    def split(self, role: Role) -> Split:
        if role.kind == "target":
            return self.target
        if role.kind == "shadow" and role.index is not None:
            return self.shadow(role.index)
        raise _unknown(role)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"target_members": self.target.members, "target_nonmembers": self.target.nonmembers,
                  "shadow_half": self.shadow_half}
        for i in range(self.shadow_count):
            split = self.shadow(i)
            arrays[f"shadow{i}_members"] = split.members
            arrays[f"shadow{i}_nonmembers"] = split.nonmembers
        return arrays


def balanced_membership(sample_count: int, models: int, rng: np.random.Generator) -> np.ndarray:
    """models x sample_count booleans, each column with exactly models // 2 True (IN) at random rows."""
    ranks = rng.random((models, sample_count)).argsort(0).argsort(0)
    return ranks < models // 2


@dataclass(frozen=True)
class PoolSplits(Splits):
    """The pool protocol's splits: sample set D, population, and which model trained on which sample."""

    samples: np.ndarray  # D, sorted pool indices
    population: np.ndarray  # the rest of the pool, sorted
    inside: np.ndarray  # models x len(samples): model m trained on samples[i]

    @classmethod
    def build(cls, pool_size: int, split_seed: int, models: int, dataset_fraction: float) -> "PoolSplits":
        if models < 2:
            raise ValueError("a model pool needs at least 2 models")
        perm = _rng(split_seed, 3).permutation(pool_size)
        cut = int(round(dataset_fraction * pool_size))
        if not 2 <= cut <= pool_size:
            raise ValueError(f"pool.dataset_fraction {dataset_fraction} leaves {cut} of {pool_size} samples")
        samples, population = np.sort(perm[:cut]), np.sort(perm[cut:])
        return cls(samples, population, balanced_membership(len(samples), models, _rng(split_seed, 4)))

    @property
    def models(self) -> int:
        return len(self.inside)

    def model(self, m: int) -> Split:
        if not 0 <= m < self.models:
            raise ValueError(f"pool model {m} does not exist (the pool has {self.models})")
        split = Split(self.samples[self.inside[m]], self.samples[~self.inside[m]])
        split.check_disjoint()
        return split

    def split(self, role: Role) -> Split:
        if role.kind == "pool" and role.index is not None:
            return self.model(role.index)
        raise _unknown(role)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"pool_samples": self.samples, "population": self.population, "pool_inside": self.inside}

    def attack_view(self) -> dict[str, Any]:
        """A target's M - 1 references give each sample floor(M/2) - 1 of each side once balanced.

        Every sample is IN for exactly floor(M/2) models, so a target's membership fixes
        how many of its references are IN; reference attacks get tables balanced to the
        same count per side for every sample (:class:`~mibench.sdk.ReferenceRules`).
        """
        return {"population": self.population, "pool_models": self.models,
                "reference_rules": ReferenceRules(per_side=self.models // 2 - 1)}
