"""The data protocol of REFERENCE §1: deterministic, disjoint, the right sizes."""

import numpy as np
import pytest

from mibench.engine.protocols.splits import PaperSplits, Role
from mibench.sdk.sampling import stratified_subsample


def test_halves_and_sizes():
    p = PaperSplits.build(1001, split_seed=0)
    assert len(p.target_half) == 501 and len(p.shadow_half) == 500
    assert len(p.target.members) == 251 and len(p.target.nonmembers) == 250
    assert np.array_equal(np.sort(np.r_[p.target_half, p.shadow_half]), np.arange(1001))


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b, c = PaperSplits.build(500, 0), PaperSplits.build(500, 0), PaperSplits.build(500, 1)
    assert np.array_equal(a.target.members, b.target.members)
    assert np.array_equal(a.shadow(3).members, b.shadow(3).members)
    assert not np.array_equal(a.target.members, c.target.members)


@pytest.mark.parametrize("seed", [0, 7])
def test_target_and_shadow_data_never_meet(seed):
    p = PaperSplits.build(2000, seed)
    target = np.r_[p.target.members, p.target.nonmembers]
    assert np.array_equal(np.sort(target), p.target_half)
    assert np.intersect1d(p.target.members, p.target.nonmembers).size == 0
    for i in range(5):
        s = p.shadow(i)
        assert np.intersect1d(s.members, s.nonmembers).size == 0
        assert np.intersect1d(np.r_[s.members, s.nonmembers], target).size == 0
        assert np.array_equal(np.sort(np.r_[s.members, s.nonmembers]), p.shadow_half)
    assert not np.array_equal(p.shadow(0).members, p.shadow(1).members)


def test_shadow_i_is_resplit_with_seed_i_whatever_the_run():
    # The shadow split depends on the shadow half and i alone.
    p = PaperSplits.build(300, 0)
    assert np.array_equal(p.shadow(2).members, PaperSplits.build(300, 0).split(Role("shadow", 2)).members)
    with pytest.raises(ValueError, match="unknown model role"):
        p.split(Role("teacher"))


def test_stratified_subsample_keeps_class_proportions():
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    idx = stratified_subsample(labels, 100, seed=0)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    assert np.bincount(labels[idx]).tolist() == [40, 30, 20, 10]
    assert np.array_equal(idx, stratified_subsample(labels, 100, seed=0))
    assert not np.array_equal(idx, stratified_subsample(labels, 100, seed=1))
