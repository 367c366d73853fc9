"""Membership-inference metrics, computed by the engine for every attack (REFERENCE §5).

Scores: higher means "more likely a member". Members are the positive class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


@dataclass(frozen=True)
class AttackMetrics:
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    balanced_accuracy: float


def tpr_at_fpr(membership: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """TPR of the exact ROC curve at the given FPR, interpolated between its vertices.

    The curve is sklearn's, with every threshold kept. Where the curve is vertical
    at ``fpr`` the top of the segment counts (the best TPR at that FPR); between two
    vertices the TPR is interpolated linearly (a randomised threshold between them).
    """
    fprs, tprs, _ = roc_curve(membership, scores, drop_intermediate=False)
    i = int(np.searchsorted(fprs, fpr, side="right")) - 1  # last vertex with FPR <= fpr
    if fprs[i] == fpr or i == len(fprs) - 1:
        return float(tprs[i])
    share = (fpr - fprs[i]) / (fprs[i + 1] - fprs[i])
    return float(tprs[i] + share * (tprs[i + 1] - tprs[i]))


def best_threshold(scores: np.ndarray, membership: np.ndarray) -> float:
    """The threshold t maximising balanced accuracy of "member iff score >= t".

    Candidates are the observed scores (and +inf, "nobody is a member"); ties in
    balanced accuracy go to the smallest threshold. Sort-based: O(n log n).
    """
    scores = np.asarray(scores, dtype=np.float64)
    membership = np.asarray(membership, dtype=bool)
    n_pos = int(membership.sum())
    n_neg = len(membership) - n_pos
    if n_pos == 0 or n_neg == 0:
        # One class only: calling everything the present class is the best rule.
        return float(-np.inf) if n_pos else float(np.inf)
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    m = membership[order]
    tp = np.cumsum(m)
    fp = np.cumsum(~m)
    # A threshold equal to s[i] admits every sample with score >= s[i]: use the last
    # position of each run of equal scores.
    last = np.r_[s[1:] != s[:-1], True]
    bal = 0.5 * (tp[last] / n_pos + 1.0 - fp[last] / n_neg)
    cand = s[last]
    # Threshold +inf: nothing called a member, balanced accuracy 0.5.
    best = int(np.argmax(bal))
    if bal[best] <= 0.5:
        return float(np.inf)
    # argmax returns the first (largest threshold) of ties; prefer the smallest one.
    ties = np.flatnonzero(bal == bal[best])
    return float(cand[ties[-1]])


def per_class_thresholds(
    scores: np.ndarray, membership: np.ndarray, labels: np.ndarray, num_classes: int
) -> np.ndarray:
    """One balanced-accuracy-maximising threshold per class (REFERENCE §1).

    A class with no calibration samples gets the global threshold.
    """
    labels = np.asarray(labels)
    fallback = best_threshold(scores, membership)
    out = np.full(num_classes, fallback, dtype=np.float64)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[c] = best_threshold(scores[mask], membership[mask])
    return out


def predict_members(
    scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | float
) -> np.ndarray:
    """Apply a global threshold or per-class thresholds: member iff score >= threshold."""
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 0:
        return np.asarray(scores) >= thr
    return np.asarray(scores) >= thr[np.asarray(labels)]


def balanced_accuracy(membership: np.ndarray, predicted: np.ndarray) -> float:
    membership = np.asarray(membership, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    tpr = predicted[membership].mean()
    tnr = (~predicted[~membership]).mean()
    return float(0.5 * (tpr + tnr))


def attack_metrics(
    membership: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    thresholds: np.ndarray | float | None,
) -> AttackMetrics:
    """Every number a result row reports for one attack on one target."""
    membership = np.asarray(membership, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("attack returned non-finite scores")
    bal = (
        balanced_accuracy(membership, predict_members(scores, labels, thresholds))
        if thresholds is not None
        else float("nan")
    )
    return AttackMetrics(
        auc=float(roc_auc_score(membership, scores)),
        tpr_at_1pct_fpr=tpr_at_fpr(membership, scores, 0.01),
        tpr_at_01pct_fpr=tpr_at_fpr(membership, scores, 0.001),
        balanced_accuracy=bal,
    )
