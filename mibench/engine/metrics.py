"""Membership-inference metrics, computed by the engine for every attack (REFERENCE §5).

Scores: higher means "more likely a member". Members are the positive class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve



@dataclass(frozen=True)
class AttackMetrics:
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    balanced_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
