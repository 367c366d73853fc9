"""Membership-inference metrics, computed by the engine for every attack (REFERENCE §5).

Scores: higher means "more likely a member". Members are the positive class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from mibench.engine.uncertainty import auc_interval, tpr_at_fpr



@dataclass(frozen=True)
class AttackMetrics:
    """Every number a result row reports for one attack on one target, with its 95% interval.

    TPR at a fixed FPR follows Carlini et al. 2022: the highest TPR over thresholds whose
    FPR is at most the target, no interpolation, so the figures compare with the
    literature. ``fp_at_01pct_fpr`` is how many non-members that figure's threshold lets
    through, and ``tpr_at_01pct_resolvable`` is False where fewer than 5 false positives
    are allowed at 0.1% FPR (fewer than 5,000 non-members): too few to resolve. TPR at
    0.01% FPR is reported only where there are at least ``MIN_NONMEMBERS_001PCT`` (10,000)
    non-members, and NaN otherwise.
    """

    auc: float
    auc_low: float
    auc_high: float
    tpr_at_1pct_fpr: float
    tpr_at_1pct_fpr_low: float
    tpr_at_1pct_fpr_high: float
    tpr_at_01pct_fpr: float
    tpr_at_01pct_fpr_low: float
    tpr_at_01pct_fpr_high: float
    fp_at_01pct_fpr: int
    tpr_at_01pct_resolvable: bool
    balanced_accuracy: float
    tpr_at_001pct_fpr: float = math.nan  # only with at least 10,000 non-members (10 false positives allowed)
    tpr_at_001pct_fpr_low: float = math.nan
    tpr_at_001pct_fpr_high: float = math.nan
    fp_at_001pct_fpr: int = 0

    def as_row(self) -> dict[str, Any]:
        """The metrics under the names of the result row's columns (``mibench.report.results.ResultRow``)."""
        return {ROW_NAMES.get(k, k): v for k, v in asdict(self).items()}


ROW_NAMES = {
    "tpr_at_01pct_fpr": "tpr_at_0_1pct_fpr",
    "tpr_at_01pct_fpr_low": "tpr_at_0_1pct_fpr_low",
    "tpr_at_01pct_fpr_high": "tpr_at_0_1pct_fpr_high",
    "fp_at_01pct_fpr": "fp_at_0_1pct_fpr",
    "tpr_at_01pct_resolvable": "tpr_at_0_1pct_fpr_resolvable",
    "balanced_accuracy": "balanced_acc",
    "tpr_at_001pct_fpr": "tpr_at_0_01pct_fpr",
    "tpr_at_001pct_fpr_low": "tpr_at_0_01pct_fpr_low",
    "tpr_at_001pct_fpr_high": "tpr_at_0_01pct_fpr_high",
    "fp_at_001pct_fpr": "fp_at_0_01pct_fpr",
}

MIN_NONMEMBERS_001PCT = 10_000


def select_rows(arrays: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """An attack output's per-sample arrays restricted to the rows ``keep`` marks (one population's);
    anything else (thresholds) as it is."""
    keep = np.asarray(keep, dtype=bool)
    return {name: values[keep] if np.ndim(values) and len(values) == len(keep) and name != "thresholds" else values
            for name, values in arrays.items()}


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
    indices: np.ndarray | None = None,
) -> AttackMetrics:
    """Every number a result row reports for one attack on one target (or pooled over a pool's targets).

    ``indices``: the pool index of each row; a pooled output repeats each sample once per
    target, and TPR at 0.01% FPR needs ``MIN_NONMEMBERS_001PCT`` distinct non-members.
    """
    membership = np.asarray(membership, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("attack returned non-finite scores")
    bal = (
        balanced_accuracy(membership, predict_members(scores, labels, thresholds))
        if thresholds is not None
        else float("nan")
    )
    try:
        auc, auc_low, auc_high = auc_interval(membership, scores)
    except ValueError:  # a single member or non-member: no variance to estimate
        auc, auc_low, auc_high = float(roc_auc_score(membership, scores)), math.nan, math.nan
    at1, at01 = tpr_at_fpr(membership, scores, 0.01), tpr_at_fpr(membership, scores, 0.001)
    return AttackMetrics(
        auc=auc, auc_low=auc_low, auc_high=auc_high,
        tpr_at_1pct_fpr=at1.tpr, tpr_at_1pct_fpr_low=at1.low, tpr_at_1pct_fpr_high=at1.high,
        tpr_at_01pct_fpr=at01.tpr, tpr_at_01pct_fpr_low=at01.low, tpr_at_01pct_fpr_high=at01.high,
        fp_at_01pct_fpr=int(at01.false_positives), tpr_at_01pct_resolvable=bool(at01.resolvable),
        balanced_accuracy=bal,
        **_tpr_at_001pct(membership, scores, indices),
    )


def _tpr_at_001pct(membership: np.ndarray, scores: np.ndarray, indices: np.ndarray | None) -> dict[str, float]:
    nonmembers = int((~membership).sum()) if indices is None else len(np.unique(np.asarray(indices)[~membership]))
    if nonmembers < MIN_NONMEMBERS_001PCT:
        return {}
    at = tpr_at_fpr(membership, scores, 0.0001)
    return {"tpr_at_001pct_fpr": at.tpr, "tpr_at_001pct_fpr_low": at.low, "tpr_at_001pct_fpr_high": at.high,
            "fp_at_001pct_fpr": int(at.false_positives)}
