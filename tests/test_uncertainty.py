"""Intervals for membership-inference figures (mibench.engine.uncertainty): hand-worked cases,
brute-force cross-checks, seeded coverage simulations, and degenerate inputs."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from mibench.engine.uncertainty import (
    TprAtFpr,
    _resampled_tprs,
    auc_interval,
    binomial_interval,
    bootstrap_tpr_interval,
    delong_auc_variance,
    tpr_at_fpr,
)

# --------------------------------------------------------------------------- AUC by hand

# Members X = .9 .8 .5 .3, non-members Y = .7 .5 .2 .1 (one tie across classes, at .5).
#
# Midranks of all eight (ascending): .1->1  .2->2  .3->3  .5,.5->4.5 each  .7->6  .8->7  .9->8
#   Tz(X) = 8, 7, 4.5, 3 (sum 22.5)        Tz(Y) = 6, 4.5, 2, 1
#   Tx (X among X) = 4, 3, 2, 1            Ty (Y among Y) = 4, 3, 2, 1
# AUC = (22.5 - 4*5/2) / (4*4) = 12.5 / 16 = 0.78125
#   (pairs: .9 beats 4, .8 beats 4, .5 beats 2 and ties 1 -> 2.5, .3 beats 2; 12.5 of 16)
# V10 = (Tz(X) - Tx) / n = 4/4, 4/4, 2.5/4, 2/4 = 1, 1, .625, .5
# V01 = 1 - (Tz(Y) - Ty) / m = 1 - 2/4, 1 - 1.5/4, 1 - 0, 1 - 0 = .5, .625, 1, 1
# Both have mean 0.78125 and deviations +-{.21875, .21875, -.15625, -.28125}:
#   sum of squares = (49 + 49 + 25 + 81) / 1024 = 204/1024 = 51/256
#   S10 = S01 = (51/256) / 3 = 17/256
# S = S10/m + S01/n = 17/1024 + 17/1024 = 17/512 = 0.033203125
HAND_MEMBER = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
HAND_SCORES = np.array([0.9, 0.8, 0.5, 0.3, 0.7, 0.5, 0.2, 0.1])
HAND_AUC = 12.5 / 16
HAND_VAR = 17 / 512


def test_delong_by_hand():
    auc, var = delong_auc_variance(HAND_MEMBER, HAND_SCORES)
    assert abs(auc - HAND_AUC) < 1e-12
    assert abs(var - HAND_VAR) < 1e-12
    assert abs(auc - roc_auc_score(HAND_MEMBER, HAND_SCORES)) < 1e-12


def test_auc_interval_by_hand():
    # At 50% the interval stays inside [0, 1]: 0.78125 -+ 0.6745 * 0.1822.
    z = stats.norm.ppf(0.75)
    auc, low, high = auc_interval(HAND_MEMBER, HAND_SCORES, level=0.5)
    assert abs(auc - HAND_AUC) < 1e-12
    assert abs(low - (HAND_AUC - z * math.sqrt(HAND_VAR))) < 1e-12
    assert abs(high - (HAND_AUC + z * math.sqrt(HAND_VAR))) < 1e-12
    # At 95% the half-width 0.357 pushes the top past 1: clipped.
    auc, low, high = auc_interval(HAND_MEMBER, HAND_SCORES)
    assert abs(low - (HAND_AUC - 1.959963984540054 * math.sqrt(HAND_VAR))) < 1e-12
    assert high == 1.0


def test_a_tie_across_classes_counts_one_half():
    # Member .5 vs non-member .5 is the only pair: AUC 1/2. With one more clear pair each way:
    member = np.array([1, 1, 0, 0], bool)
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    # pairs: (.5,.5) 1/2, (.5,.1) 1, (.9,.5) 1, (.9,.1) 1 -> 3.5 / 4
    auc, _ = delong_auc_variance(member, scores)
    assert abs(auc - 3.5 / 4) < 1e-12
    # V10 = (.75, 1), V01 = (.75, 1): S10 = S01 = (.125^2 * 2) / 1 = 1/32; S = 1/64 + 1/64.
    assert abs(delong_auc_variance(member, scores)[1] - 1 / 32) < 1e-12


def _delong_bruteforce(member, scores):
    """DeLong (1988) from the full m x n kernel matrix psi = [x > y] + [x == y] / 2."""
    x, y = scores[member], scores[~member]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size


def test_delong_matches_the_kernel_matrix_with_many_ties():
    rng = np.random.default_rng(7)
    for _ in range(20):
        m, n = rng.integers(2, 60, size=2)
        member = np.arange(m + n) < m
        scores = rng.integers(0, 8, size=m + n).astype(float) + member * rng.integers(0, 3)
        auc, var = delong_auc_variance(member, scores)
        ref_auc, ref_var = _delong_bruteforce(member, scores)
        assert abs(auc - ref_auc) < 1e-12
        assert abs(var - ref_var) < 1e-12
        assert abs(auc - roc_auc_score(member, scores)) < 1e-12


def test_all_equal_scores_give_a_zero_width_interval_at_one_half():
    member = np.array([1, 1, 1, 0, 0], bool)
    assert auc_interval(member, np.full(5, 0.3)) == (0.5, 0.5, 0.5)


def test_perfect_separation_gives_a_zero_width_interval_at_one():
    member = np.array([1, 1, 0, 0], bool)
    assert auc_interval(member, np.array([0.9, 0.8, 0.2, 0.1])) == (1.0, 1.0, 1.0)


def test_delong_interval_covers_the_true_auc():
    """Binormal scores, members ~ N(d, 1), non-members ~ N(0, 1): true AUC = Phi(d / sqrt 2)."""
    d, m, repeats = 1.0, 200, 400
    true_auc = stats.norm.cdf(d / math.sqrt(2))
    rng = np.random.default_rng(20240601)
    member = np.arange(2 * m) < m
    covered = 0
    for _ in range(repeats):
        scores = np.concatenate([rng.normal(d, 1.0, m), rng.normal(0.0, 1.0, m)])
        _, low, high = auc_interval(member, scores)
        covered += low <= true_auc <= high
    coverage = covered / repeats
    assert 0.91 <= coverage <= 0.985, coverage


# --------------------------------------------------------------------------- TPR at FPR by hand

# Ten non-members .0 .1 ... .9 and ten members; one member ties the non-member at .8.
# Descending: .95M .92M | .9N | .85M .84M .83M | .8M .8N | .7N .6N .5M .5N ...
# ROC vertices (FPR, TPR), every threshold kept:
#   .95 (0, .1)  .92 (0, .2)  .9 (.1, .2)  .85 (.1, .3)  .84 (.1, .4)  .83 (.1, .5)
#   .8 (.2, .6)  <- diagonal segment: member and non-member enter together
#   .7 (.3, .6)  .6 (.4, .6)  .5 (.5, .7) ...
CARLINI_NON = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
CARLINI_MEM = [0.95, 0.92, 0.85, 0.84, 0.83, 0.8, 0.5, 0.4, 0.3, 0.05]
CARLINI_MEMBER = np.array([False] * 10 + [True] * 10)
CARLINI_SCORES = np.array(CARLINI_NON + CARLINI_MEM)


def test_tpr_at_fpr_by_hand():
    r = tpr_at_fpr(CARLINI_MEMBER, CARLINI_SCORES, 0.1)
    # One false positive allowed: threshold .83 catches .95 .92 .85 .84 .83 and the .9 non-member.
    assert isinstance(r, TprAtFpr)
    assert r.tpr == 0.5 and r.threshold == 0.83 and r.false_positives == 1
    assert (r.true_positives, r.positives, r.negatives, r.allowed_false_positives) == (5, 10, 10, 1)
    assert (r.low, r.high) == binomial_interval(5, 10)

    r0 = tpr_at_fpr(CARLINI_MEMBER, CARLINI_SCORES, 0.0)
    # No false positive at all: only the members above the top non-member (.9).
    assert r0.tpr == 0.2 and r0.threshold == 0.92 and r0.false_positives == 0

    r2 = tpr_at_fpr(CARLINI_MEMBER, CARLINI_SCORES, 0.2)
    # Two allowed: threshold .8 takes the tied member, and the tied non-member counts as a FP.
    assert r2.tpr == 0.6 and r2.threshold == 0.8 and r2.false_positives == 2


def test_tpr_at_fpr_does_not_interpolate():
    fprs, tprs, _ = roc_curve(CARLINI_MEMBER, CARLINI_SCORES, drop_intermediate=False)
    # At FPR .15 the ROC is on the diagonal from (.1, .5) to (.2, .6): interpolating gives .55,
    # a TPR no threshold reaches. The Carlini rule keeps the vertex at FPR .1.
    assert np.interp(0.15, fprs, tprs) == pytest.approx(0.55)
    r = tpr_at_fpr(CARLINI_MEMBER, CARLINI_SCORES, 0.15)
    assert r.tpr == 0.5 and r.threshold == 0.83 and r.false_positives == 1
    # At a vertex's own FPR the two agree.
    assert np.interp(0.1, fprs, tprs) == pytest.approx(0.5)


def test_tpr_at_fpr_with_nothing_countable():
    # The top score is a non-member and no false positive is allowed: TPR 0, threshold +inf.
    member = np.array([0, 1, 1, 0], bool)
    r = tpr_at_fpr(member, np.array([0.9, 0.8, 0.7, 0.1]), 0.0)
    assert r.tpr == 0.0 and r.threshold == math.inf and r.false_positives == 0
    assert r.low == 0.0
    # All scores equal: any threshold takes every non-member too.
    r = tpr_at_fpr(np.array([1, 1, 0, 0, 0], bool), np.full(5, 0.4), 0.5)
    assert r.tpr == 0.0 and r.false_positives == 0
    # The whole budget (fpr 1): every member counts.
    r = tpr_at_fpr(member, np.array([0.9, 0.8, 0.7, 0.1]), 1.0)
    assert r.tpr == 1.0 and r.threshold == 0.7 and r.false_positives == 1


def _carlini_bruteforce(member, scores, fpr):
    """Every threshold (observed scores and +inf): the best TPR with FP / n <= fpr, and the
    highest threshold reaching it."""
    pos, neg = scores[member], scores[~member]
    best = (0.0, math.inf, 0)
    for t in sorted(set(scores.tolist()) | {math.inf}, reverse=True):
        fp = int((neg >= t).sum())
        tpr = (pos >= t).sum() / pos.size
        if fp / neg.size <= fpr and tpr > best[0]:
            best = (tpr, t, fp)
    return best


def test_tpr_at_fpr_matches_a_search_over_all_thresholds():
    rng = np.random.default_rng(11)
    for _ in range(30):
        m, n = rng.integers(1, 80, size=2)
        member = rng.permutation(np.arange(m + n) < m)
        scores = rng.integers(0, 15, size=m + n) / 4 + member * rng.random()
        for fpr in (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
            r = tpr_at_fpr(member, scores, fpr)
            assert (r.tpr, r.threshold, r.false_positives) == _carlini_bruteforce(member, scores, fpr)
            assert r.false_positives / r.negatives <= fpr


def test_resolvable_flag():
    rng = np.random.default_rng(3)
    for negatives, expected in ((1_000, False), (10_000, True)):
        member = np.arange(negatives + 500) < 500
        scores = rng.normal(size=member.size) + member
        r = tpr_at_fpr(member, scores, 0.001)
        assert r.resolvable is expected
        assert r.allowed_false_positives == negatives // 1000
    # The rule is fpr * negatives >= 5: exactly 5 allowed is resolvable, 4 is not.
    member = np.arange(5100) < 100
    scores = np.linspace(0, 1, member.size)
    assert tpr_at_fpr(member, scores, 0.001).resolvable  # 5000 * .001 = 5
    assert not tpr_at_fpr(member[:4100], scores[:4100], 0.001).resolvable  # 4


# --------------------------------------------------------------------------- Clopper-Pearson


def test_binomial_interval_closed_forms():
    # k = 0: high = 1 - (alpha/2)^(1/n); k = n: low = (alpha/2)^(1/n).
    assert binomial_interval(0, 10) == (0.0, pytest.approx(1 - 0.025 ** 0.1, abs=1e-12))
    assert binomial_interval(10, 10) == (pytest.approx(0.025 ** 0.1, abs=1e-12), 1.0)
    low, high = binomial_interval(5, 10)
    assert low == pytest.approx(0.18708602, abs=1e-7) and high == pytest.approx(0.81291398, abs=1e-7)


def test_clopper_pearson_coverage():
    """Seeded binomial draws at known TPRs: the exact interval covers at least ~95%."""
    rng = np.random.default_rng(99)
    trials = 200
    for p in (0.01, 0.05, 0.3, 0.5):
        draws = rng.binomial(trials, p, size=2000)
        bounds = {k: binomial_interval(int(k), trials) for k in np.unique(draws)}
        coverage = np.mean([bounds[k][0] <= p <= bounds[k][1] for k in draws])
        assert coverage >= 0.93, (p, coverage)


# --------------------------------------------------------------------------- bootstrap


def test_resampled_tprs_follow_the_carlini_rule():
    rng = np.random.default_rng(5)
    m, n = 40, 60
    member = np.arange(m + n) < m
    scores = rng.integers(0, 12, size=m + n) / 3 + member * 0.7
    pos, neg = np.sort(scores[member]), np.sort(scores[~member])
    for fpr in (0.0, 0.05, 0.2, 1.0):
        k = tpr_at_fpr(member, scores, fpr).allowed_false_positives
        pos_idx, neg_idx = rng.integers(0, m, (25, m)), rng.integers(0, n, (25, n))
        fast = _resampled_tprs(pos, neg, k, pos_idx, neg_idx)
        for r in range(25):
            resampled = np.concatenate([pos[pos_idx[r]], neg[neg_idx[r]]])
            assert fast[r] == tpr_at_fpr(member, resampled, fpr).tpr


def test_bootstrap_interval_is_deterministic_and_sensible():
    rng = np.random.default_rng(8)
    member = np.arange(3000) < 1500
    scores = rng.normal(size=3000) + 1.5 * member
    low, high = bootstrap_tpr_interval(member, scores, 0.01, n_boot=1000, seed=0)
    assert (low, high) == bootstrap_tpr_interval(member, scores, 0.01, n_boot=1000, seed=0)
    point = tpr_at_fpr(member, scores, 0.01)
    assert low <= point.tpr <= high
    # The bootstrap also carries the threshold's noise: wider than the fixed-threshold interval.
    assert high - low > point.high - point.low


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize(
    "call",
    [
        lambda mem, s: auc_interval(mem, s),
        lambda mem, s: tpr_at_fpr(mem, s, 0.1),
        lambda mem, s: bootstrap_tpr_interval(mem, s, 0.1, n_boot=10),
    ],
)
def test_one_class_empty_raises(call):
    with pytest.raises(ValueError, match="needs both classes: got 3 members and 0 non-members"):
        call(np.ones(3, bool), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="needs both classes: got 0 members and 2 non-members"):
        call(np.zeros(2, bool), np.array([0.1, 0.2]))


def test_bad_inputs_raise():
    member = np.array([1, 1, 0, 0], bool)
    scores = np.array([0.9, 0.4, 0.6, 0.1])
    with pytest.raises(ValueError, match="at least two members and two non-members: got 1 members"):
        auc_interval(np.array([1, 0, 0], bool), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="differ in length: 4 != 3"):
        auc_interval(member, scores[:3])
    with pytest.raises(ValueError, match="must all be finite"):
        tpr_at_fpr(member, np.array([0.9, np.nan, 0.6, 0.1]), 0.1)
    with pytest.raises(ValueError, match="boolean or 0/1"):
        auc_interval(np.array([2, 1, 0, 0]), scores)
    with pytest.raises(ValueError, match=r"fpr must lie in \[0, 1\]"):
        tpr_at_fpr(member, scores, 1.5)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        auc_interval(member, scores, level=1.0)
    with pytest.raises(ValueError, match="n_boot must be a positive integer"):
        bootstrap_tpr_interval(member, scores, 0.1, n_boot=0)
    with pytest.raises(ValueError, match="trials must be positive"):
        binomial_interval(0, 0)
    with pytest.raises(ValueError, match=r"successes must lie in \[0, trials\]"):
        binomial_interval(5, 4)
    # 0/1 integers are accepted as membership.
    assert auc_interval(member.astype(int), scores)[0] == 0.75
