"""Metrics against small cases worked out by hand, and against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mibench.engine.metrics import attack_metrics, balanced_accuracy, predict_members
from mibench.engine.uncertainty import tpr_at_fpr as carlini


def tpr_at_fpr(member, scores, fpr):
    """The leaderboard's TPR at a fixed FPR: Carlini et al.'s rule, no interpolation."""
    return carlini(member, scores, fpr).tpr
from mibench.sdk.thresholds import best_threshold, per_class_thresholds

# Members score 0.9, 0.4; non-members 0.6, 0.1. Member beats non-member in 3 of 4 pairs.
MEMBER = np.array([1, 1, 0, 0], bool)
SCORES = np.array([0.9, 0.4, 0.6, 0.1])


def test_auc_by_hand():
    assert attack_metrics(MEMBER, SCORES, np.zeros(4, int), None).auc == pytest.approx(0.75)


def test_tpr_at_fpr_by_hand():
    # ROC vertices: (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    assert tpr_at_fpr(MEMBER, SCORES, 0.01) == pytest.approx(0.5)
    assert tpr_at_fpr(MEMBER, SCORES, 0.5) == pytest.approx(1.0)
    assert tpr_at_fpr(MEMBER, SCORES, 0.75) == pytest.approx(1.0)


def test_tpr_at_fpr_on_a_vertical_segment_takes_its_top():
    # Non-members 0.95 .3 .2 .1, members .9 .8 .7 .05: at FPR 0.25 three members are above.
    member = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    scores = np.array([0.95, 0.3, 0.2, 0.1, 0.9, 0.8, 0.7, 0.05])
    assert tpr_at_fpr(member, scores, 0.25) == pytest.approx(0.75)
    assert tpr_at_fpr(member, scores, 0.1) == pytest.approx(0.0)
    # Between (1, .75) and ... the last vertex (1, 1) is at FPR 1.
    assert tpr_at_fpr(member, scores, 0.375) == pytest.approx(0.75)


def test_tpr_at_fpr_takes_a_vertex_never_an_interpolation():
    # Non-members .8 .6, members .7 .5: vertices (0,0) (.5,0) (.5,.5) (1,.5) (1,1).
    member = np.array([0, 0, 1, 1], bool)
    scores = np.array([0.8, 0.6, 0.7, 0.5])
    assert tpr_at_fpr(member, scores, 0.25) == pytest.approx(0.0)
    assert tpr_at_fpr(member, scores, 0.75) == pytest.approx(0.5)
    member = np.array([0, 1, 1, 0], bool)
    scores = np.array([0.8, 0.7, 0.6, 0.5])  # (0,0) (.5,0) (.5,1) (1,1) with ties none
    assert tpr_at_fpr(member, scores, 0.5) == pytest.approx(1.0)


def test_tied_scores_give_no_tpr_below_their_fpr():
    # All four samples tie: a threshold admits all (FPR 1) or none, so at FPR 0.3 the TPR is 0
    # (an interpolated ROC would say 0.3, a rate no threshold achieves).
    member = np.array([1, 1, 0, 0], bool)
    scores = np.zeros(4)
    assert tpr_at_fpr(member, scores, 0.3) == 0.0


def test_auc_and_tpr_agree_with_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    member = rng.random(2000) < 0.5
    scores = rng.normal(size=2000) + 0.5 * member
    m = attack_metrics(member, scores, np.zeros(2000, int), None)
    assert m.auc == pytest.approx(roc_auc_score(member, scores))
    # Brute force: the best TPR over thresholds whose FPR is at most 1%.
    best = max(
        (scores[member] >= t).mean() for t in np.unique(scores) if (scores[~member] >= t).mean() <= 0.01
    )
    assert m.tpr_at_1pct_fpr == best
    assert m.auc_low < m.auc < m.auc_high and m.tpr_at_1pct_fpr_low <= m.tpr_at_1pct_fpr <= m.tpr_at_1pct_fpr_high
    assert not m.tpr_at_01pct_resolvable  # about 1,000 non-members allow 1 false positive at 0.1% FPR


def test_best_threshold_maximises_balanced_accuracy():
    # t=.9: bal .75; t=.6: .5; t=.4: .75; t=.1: .5 -> ties go to the smaller threshold, .4
    assert best_threshold(SCORES, MEMBER) == pytest.approx(0.4)
    assert best_threshold(np.array([3.0, 2.0, 1.0]), np.array([1, 0, 0], bool)) == pytest.approx(3.0)


def test_best_threshold_with_no_signal_calls_nobody_a_member():
    assert best_threshold(np.array([1.0, 2.0]), np.array([1, 0], bool)) == np.inf


def test_per_class_thresholds_and_balanced_accuracy():
    scores = np.array([5.0, 4.0, 1.0, 0.0, 0.9, 0.8, 0.2, 0.1])
    member = np.array([1, 0, 1, 0, 1, 1, 0, 0], bool)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    thr = per_class_thresholds(scores, member, labels, num_classes=3)
    # class 0: t=5 -> tp .5 fp 0 -> .75; t=4 -> .5; t=1 -> tp 1 fp .5 -> .75; ties -> 1.0
    assert thr[0] == pytest.approx(1.0)
    assert thr[1] == pytest.approx(0.8)
    # class 2 has no samples: the global threshold
    assert thr[2] == pytest.approx(best_threshold(scores, member))
    predicted = predict_members(scores, labels, thr)
    assert predicted.tolist() == [True, True, True, False, True, True, False, False]
    assert balanced_accuracy(member, predicted) == pytest.approx(0.5 * (1.0 + 3 / 4))


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        attack_metrics(MEMBER, np.array([1.0, np.nan, 0.0, 0.0]), np.zeros(4, int), None)


@pytest.mark.parametrize("nonmembers, expected", [(10_000, 0.5), (9_999, None)])
def test_tpr_at_001pct_fpr_needs_10000_nonmembers(nonmembers, expected):
    # Non-members score 0 .. n-1. 30 members score above all of them, 20 between the two
    # highest non-members, 50 at -1. With 10,000 non-members 0.01% FPR allows exactly one
    # false positive: the threshold at the highest non-member catches 30 + 20 of 100.
    top = nonmembers - 1
    scores = np.concatenate([np.arange(nonmembers, dtype=float), np.full(30, top + 1.0), np.full(20, top - 0.5),
                             np.full(50, -1.0)])
    membership = np.concatenate([np.zeros(nonmembers, bool), np.ones(100, bool)])
    metrics = attack_metrics(membership, scores, np.zeros(len(scores), int), None)
    row = metrics.as_row()
    if expected is None:  # too few non-members: not reported
        assert np.isnan(row["tpr_at_0_01pct_fpr"]) and np.isnan(row["tpr_at_0_01pct_fpr_low"])
    else:
        assert row["tpr_at_0_01pct_fpr"] == expected and row["fp_at_0_01pct_fpr"] == 1
        assert row["tpr_at_0_01pct_fpr_low"] < expected < row["tpr_at_0_01pct_fpr_high"]
    assert row["tpr_at_0_1pct_fpr"] == 0.5  # ten false positives allowed (9 with 9,999): the same 50 members
