"""The data protocol of REFERENCE §1, as pool indices.

pool -> target half | shadow half (seeded by the grid's split_seed);
target half -> target train (members) | target test (non-members);
shadow half -> for shadow i, its own train | test, re-split with seed i.
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
class Protocol:
    """All splits of one pool for one split seed."""

    target_half: np.ndarray
    shadow_half: np.ndarray
    target: Split

    @classmethod
    def build(cls, pool_size: int, split_seed: int) -> "Protocol":
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
        """``"target"`` or ``"shadow-<i>"``."""
        if role == "target":
            return self.target
        if role.startswith("shadow-"):
            return self.shadow(int(role.split("-", 1)[1]))
        raise ValueError(f"unknown model role {role!r}")
