"""Decision thresholds an attack calibrates on its shadow models (REFERENCE §1, §5).

Scores: higher means "more likely a member"; a sample is called a member when its
score is >= the threshold.
"""

from __future__ import annotations

import numpy as np


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
