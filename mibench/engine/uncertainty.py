"""Uncertainty of membership-inference figures: intervals for the AUC and for the TPR at a low FPR.

Pure functions over one attack's output: ``membership`` (boolean, or 0/1; members are the
positive class) and ``scores`` (finite floats, higher = "more likely a member"). Nothing here
imports from mibench; only numpy and scipy are used.

* :func:`auc_interval` -- the AUC with DeLong's normal interval (fast midrank algorithm of
  Sun & Xu 2014).
* :func:`tpr_at_fpr` -- the TPR at a fixed FPR by the rule of Carlini et al. 2022 (best
  threshold whose empirical FPR is within budget, no interpolation), with an exact
  Clopper-Pearson interval and a flag saying whether the sample can resolve that FPR at all.
* :func:`bootstrap_tpr_interval` -- a stratified percentile bootstrap for the same TPR, which
  also carries the uncertainty of the threshold (the Clopper-Pearson interval treats it as fixed).
* :func:`binomial_interval` -- the Clopper-Pearson interval the above rest on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "TprAtFpr",
    "auc_interval",
    "binomial_interval",
    "bootstrap_tpr_interval",
    "delong_auc_variance",
    "tpr_at_fpr",
]

# Fewest false positives an FPR budget must admit before a TPR at that FPR is called resolvable.
MIN_FALSE_POSITIVES = 5

# Bootstrap: at most this many resampled indices are held in memory at once.
_BOOT_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- input checks


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    return level


def _split(membership, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate the inputs and return (member scores, non-member scores) as float64 arrays."""
    member = np.asarray(membership)
    values = np.asarray(scores, dtype=np.float64)
    if member.ndim != 1 or values.ndim != 1:
        raise ValueError(
            f"membership and scores must be 1-D, got shapes {member.shape} and {values.shape}"
        )
    if member.shape != values.shape:
        raise ValueError(
            f"membership and scores differ in length: {member.shape[0]} != {values.shape[0]}"
        )
    if member.dtype != np.bool_:
        if member.size and not np.isin(member, (0, 1)).all():
            raise ValueError("membership must be boolean or 0/1")
        member = member.astype(bool)
    if not np.isfinite(values).all():
        raise ValueError("scores must all be finite (found NaN or infinity)")
    positives, negatives = values[member], values[~member]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(
            "membership needs both classes: got "
            f"{positives.size} members and {negatives.size} non-members"
        )
    return positives, negatives


# --------------------------------------------------------------------------- binomial


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact binomial) interval for a proportion ``successes / trials``.

    ``low`` is the ``(1 - level) / 2`` quantile of Beta(k, n - k + 1) and ``high`` the
    ``(1 + level) / 2`` quantile of Beta(k + 1, n - k); ``low`` is 0 when k = 0 and ``high`` is
    1 when k = n. Its coverage is at least ``level`` for every true proportion.
    """
    level = _check_level(level)
    k, n = int(successes), int(trials)
    if k != successes or n != trials:
        raise ValueError(f"successes and trials must be integers, got {successes!r}, {trials!r}")
    if n <= 0:
        raise ValueError(f"trials must be positive, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes must lie in [0, trials], got {k} of {n}")
    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


# --------------------------------------------------------------------------- AUC (DeLong)


def delong_auc_variance(membership, scores) -> tuple[float, float]:
    """The AUC and DeLong's estimate of its variance, by the midrank algorithm of Sun & Xu (2014).

    With m members X and n non-members Y, ``Tz`` the midranks of all m + n scores together,
    ``Tx`` the midranks of X among X and ``Ty`` those of Y among Y:

    * AUC = (sum of Tz over X - m (m + 1) / 2) / (m n)  -- ties between classes count 1/2;
    * structural components V10_i = (Tz(X_i) - Tx(X_i)) / n  (share of non-members that
      member i beats) and V01_j = 1 - (Tz(Y_j) - Ty(Y_j)) / m  (share of members that beat
      non-member j);
    * S10, S01: their sample variances (ddof = 1); variance S = S10 / m + S01 / n.

    Needs at least two members and two non-members (a sample variance needs two values).
    When all scores are equal, or the classes are perfectly separated, every component is the
    same and the variance is 0.
    """
    positives, negatives = _split(membership, scores)
    m, n = positives.size, negatives.size
    if m < 2 or n < 2:
        raise ValueError(
            "DeLong's variance needs at least two members and two non-members: got "
            f"{m} members and {n} non-members"
        )
    tz = stats.rankdata(np.concatenate([positives, negatives]), method="average")
    tx = stats.rankdata(positives, method="average")
    ty = stats.rankdata(negatives, method="average")
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    auc = float((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    variance = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, max(variance, 0.0)


def auc_interval(membership, scores, level: float = 0.95) -> tuple[float, float, float]:
    """The AUC and DeLong's normal confidence interval for it: ``(auc, low, high)``.

    The interval is ``auc -/+ z * sqrt(S)`` with ``z`` the ``(1 + level) / 2`` normal quantile
    and ``S`` DeLong's variance (:func:`delong_auc_variance`), clipped to [0, 1].

    Degenerate cases:

    * a class is empty, or has a single sample (no variance estimate): ``ValueError``;
    * all scores equal: the AUC is 0.5 and the variance 0, so the interval is ``(0.5, 0.5)``;
      more generally a zero estimated variance (e.g. perfect separation, AUC 1) gives a
      zero-width interval at the AUC. That width is the estimator's, not a claim of certainty.
    """
    level = _check_level(level)
    auc, variance = delong_auc_variance(membership, scores)
    half = float(stats.norm.ppf(0.5 + level / 2.0)) * math.sqrt(variance)
    return auc, max(0.0, auc - half), min(1.0, auc + half)


# --------------------------------------------------------------------------- TPR at FPR


def _allowed_false_positives(fpr: float, negatives: int) -> int:
    """The largest k with k / negatives <= fpr (compared as floats, like an empirical FPR)."""
    k = min(negatives, int(math.floor(fpr * negatives)))
    while k < negatives and (k + 1) / negatives <= fpr:
        k += 1
    while k > 0 and k / negatives > fpr:
        k -= 1
    return k


def _check_fpr(fpr: float) -> float:
    fpr = float(fpr)
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must lie in [0, 1], got {fpr!r}")
    return fpr


@dataclass(frozen=True)
class TprAtFpr:
    """The TPR at a fixed FPR (Carlini et al. 2022 rule) and what it rests on; see :func:`tpr_at_fpr`."""

    fpr: float  # the FPR budget asked for
    tpr: float  # true_positives / positives
    threshold: float  # member iff score >= threshold; +inf when tpr is 0
    true_positives: int  # members scored at or above the threshold
    false_positives: int  # non-members scored at or above the threshold
    positives: int  # members
    negatives: int  # non-members
    allowed_false_positives: int  # the largest k with k / negatives <= fpr
    low: float  # Clopper-Pearson interval for the TPR (true_positives of positives)
    high: float
    resolvable: bool  # fpr * negatives >= 5; see tpr_at_fpr


def tpr_at_fpr(membership, scores, fpr: float, level: float = 0.95) -> TprAtFpr:
    """TPR at a fixed FPR by the rule of Carlini et al. 2022, with an exact interval.

    Rule: over decision thresholds ``t`` (member iff ``score >= t``, ``t`` ranging over the
    observed scores and +inf), take the highest TPR among those whose empirical FPR
    (non-members at or above ``t`` divided by the number of non-members) is at most ``fpr``.
    There is no interpolation between ROC vertices: the figure is the TPR of a real threshold.
    (The authors' code takes ``tpr[fpr < x]``, a strict inequality; here the budget is
    inclusive, which differs only when ``fpr * negatives`` is a whole number.) At ``fpr = 0``
    it is the highest TPR reached with no false positive at all.

    Equivalently, with k = ``allowed_false_positives`` and q the (k + 1)-th highest
    non-member score, the TPR is the share of members scoring strictly above q.

    ``threshold`` is the highest threshold reaching that TPR (the lowest member score
    counted), so ``false_positives`` is the fewest false positives that TPR costs: the
    number the empirical FPR rests on. When no member can be counted, ``tpr`` is 0,
    ``threshold`` is +inf and ``false_positives`` 0.

    ``low``, ``high``: the Clopper-Pearson interval at ``level`` for ``true_positives`` out of
    ``positives`` at that threshold. It treats the threshold as fixed; the threshold's own
    variability is in :func:`bootstrap_tpr_interval`.

    ``resolvable`` is False exactly when ``fpr * negatives < 5``: the FPR budget then admits
    fewer than 5 false positives (``allowed_false_positives < 5``), so the threshold is set by
    at most a handful of non-members and the TPR at that FPR cannot be resolved at this sample
    size. E.g. 1,000 non-members at fpr 0.001 -> not resolvable; 10,000 -> resolvable.
    """
    fpr = _check_fpr(fpr)
    level = _check_level(level)
    positives, negatives = _split(membership, scores)
    m, n = positives.size, negatives.size
    k = _allowed_false_positives(fpr, n)
    neg_desc = np.sort(negatives)[::-1]
    counted = positives[positives > neg_desc[k]] if k < n else positives
    tp = int(counted.size)
    threshold = float(counted.min()) if tp else math.inf
    fp = int(np.count_nonzero(negatives >= threshold))
    low, high = binomial_interval(tp, m, level)
    return TprAtFpr(
        fpr=fpr,
        tpr=tp / m,
        threshold=threshold,
        true_positives=tp,
        false_positives=fp,
        positives=int(m),
        negatives=int(n),
        allowed_false_positives=k,
        low=low,
        high=high,
        resolvable=k >= MIN_FALSE_POSITIVES,
    )


def _resampled_tprs(
    pos_sorted: np.ndarray,
    neg_sorted: np.ndarray,
    k: int,
    pos_idx: np.ndarray,
    neg_idx: np.ndarray,
) -> np.ndarray:
    """Carlini TPR of each resample: row r holds the members ``pos_sorted[pos_idx[r]]`` and the
    non-members ``neg_sorted[neg_idx[r]]`` (both arrays ascending); ``k`` allowed false positives."""
    n = neg_sorted.size
    if k >= n:  # the whole budget: every member counts
        return np.ones(pos_idx.shape[0])
    # The (k + 1)-th highest resampled non-member sits at the (n - k - 1)-th smallest index,
    # since indices into an ascending array sort like the values they point at.
    q = neg_sorted[np.partition(neg_idx, n - k - 1, axis=1)[:, n - k - 1]]
    # Members strictly above q are those at ascending positions >= first_above.
    first_above = np.searchsorted(pos_sorted, q, side="right")
    return np.count_nonzero(pos_idx >= first_above[:, None], axis=1) / pos_idx.shape[1]


def bootstrap_tpr_interval(
    membership,
    scores,
    fpr: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` for the Carlini TPR at ``fpr``.

    Members and non-members are resampled separately with replacement (stratified: every
    replicate keeps the original class sizes, hence the same FPR budget k), and the TPR is
    recomputed by the rule of :func:`tpr_at_fpr` in each replicate: the share of resampled
    members strictly above the (k + 1)-th highest resampled non-member. The interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the ``n_boot`` replicates.

    Vectorised over replicates (in chunks bounded in memory); deterministic for a given seed.
    """
    fpr = _check_fpr(fpr)
    level = _check_level(level)
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    n_boot = int(n_boot)
    positives, negatives = _split(membership, scores)
    m, n = positives.size, negatives.size
    k = _allowed_false_positives(fpr, n)
    pos_sorted = np.sort(positives)
    neg_sorted = np.sort(negatives)
    rng = np.random.default_rng(seed)

    tprs = np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // max(m, n))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        neg_idx = rng.integers(0, n, size=(b, n))
        pos_idx = rng.integers(0, m, size=(b, m))
        tprs[start : start + b] = _resampled_tprs(pos_sorted, neg_sorted, k, pos_idx, neg_idx)
    alpha = 1.0 - level
    low, high = np.quantile(tprs, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
