"""Empirical epsilon: a lower bound on the privacy a model pool's attack scores disprove (REFERENCE §9).

An (epsilon, delta)-DP training algorithm bounds how well any attack can tell whether a
sample was trained on. Turned around, an attack that tells members from non-members
too well proves, with confidence 1 - alpha, that the algorithm is *not*
(epsilon, delta)-DP for any epsilon below a bound: the empirical epsilon, a lower bound
to hold against a DP accountant's upper bound.

Two methods, each valid at the stated confidence on its own:

- ``threshold`` (Kairouz et al. 2015; Jagielski et al. 2020; Nasr et al. 2021): at one
  threshold, TPR <= e^eps FPR + delta and 1 - FPR <= e^eps (1 - TPR) + delta, so
  eps >= max(log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR))) with a
  Clopper-Pearson lower bound for TPR and upper bound for FPR, each at alpha / 2.
- ``one-run`` (Steinke, Nasr and Jagielski 2023): the attacker guesses IN for its
  highest-scoring samples, OUT for its lowest and abstains on the rest; with r guesses of
  which v are right, an eps-DP algorithm makes v a count dominated by
  Binomial(r, e^eps / (1 + e^eps)), so eps_hat is the log-odds of the one-sided
  Clopper-Pearson lower bound on the share of right guesses. With delta > 0 the test is
  run at alpha - 2 m delta for m audited samples, a conservative stand-in for their
  delta term (for m = 500 and delta = 1e-5: alpha 0.04 instead of 0.05); a target with
  more than alpha / (4 delta) samples (1,250) is audited on a seeded draw of that many,
  chosen before any score is seen, so the level stays at least alpha / 2.

Both need the membership of each audited sample to be an independent fair coin *within
one model*, which the pool protocol gives (each sample's models are an independent
random ranking, so for one model its samples are IN independently with probability
about 1/2). Neither may look at the data it bounds twice, so the M targets of a pool
are split in two, seeded: the threshold (or the numbers of IN and OUT guesses) is
chosen on one half, and each target of the other half gets its own bound at
alpha / K for its K targets (Bonferroni); the reported bound is the largest of them,
valid at 1 - alpha. Treating the samples of one model as independent trials is what
the threshold method assumes and the one-run method proves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

METHODS = ("one-run", "threshold")
MAX_CANDIDATES = 400  # thresholds tried on the selection half
SHARES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # IN and OUT guesses tried, as shares of m


@dataclass(frozen=True)
class EpsilonBound:
    """A lower bound on epsilon: ``eps`` (0 when nothing is shown) by ``method`` at ``delta``, and how."""

    eps: float
    method: str
    delta: float
    confidence: float
    targets: int  # evaluation targets the bound is the largest over
    choice: str  # what was chosen on the selection half (a threshold, or the guesses)


def cp_lower(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound at level ``alpha`` on a binomial share with k successes in n."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        low = beta.ppf(alpha, k, n - k + 1)
    return np.where(k <= 0, 0.0, np.nan_to_num(low, nan=0.0))


def cp_upper(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound at level ``alpha`` on a binomial share with k successes in n."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        high = beta.ppf(1 - alpha, k + 1, n - k)
    return np.where(k >= n, 1.0, np.nan_to_num(high, nan=1.0))


def threshold_epsilon(tpr_low: np.ndarray, fpr_high: np.ndarray, delta: float) -> np.ndarray:
    """max(log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR)), 0) from bounds on TPR and FPR."""
    tpr_low, fpr_high = np.asarray(tpr_low, dtype=float), np.asarray(fpr_high, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(np.maximum(tpr_low - delta, 0.0) / fpr_high)
        second = np.log(np.maximum(1 - fpr_high - delta, 0.0) / (1 - tpr_low))
    eps = np.fmax(np.nan_to_num(first, nan=-np.inf), np.nan_to_num(second, nan=-np.inf))
    return np.maximum(eps, 0.0)


def one_run_epsilon(guesses: np.ndarray | int, correct: np.ndarray | int, alpha: float) -> np.ndarray:
    """log(p / (1 - p)) for p the lower Clopper-Pearson bound at ``alpha`` on the share of right guesses; >= 0."""
    p = cp_lower(correct, guesses, alpha)
    with np.errstate(divide="ignore"):
        eps = np.log(p) - np.log1p(-p)
    return np.where(np.asarray(guesses) > 0, np.maximum(np.nan_to_num(eps, nan=0.0, posinf=np.inf), 0.0), 0.0)


def _audited(target: np.ndarray, most: int, seed: int) -> np.ndarray:
    """Rows kept for auditing: per target, at most ``most`` of its rows, a seeded draw fixed before any score is seen."""
    keep = np.zeros(len(target), bool)
    rng = np.random.default_rng([seed, 1])
    for t in np.unique(target):
        rows = np.flatnonzero(target == t)
        keep[rows if len(rows) <= most else np.sort(rng.choice(rows, most, replace=False))] = True
    return keep


def _split_targets(target: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(target)
    order = np.random.default_rng(seed).permutation(ids)
    half = len(order) // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _counts_at(thresholds: np.ndarray, scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) of the rule 'score >= t' for each t."""
    pos, neg = np.sort(scores[member]), np.sort(scores[~member])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp, fp


def _threshold_method(parts: list[tuple[np.ndarray, np.ndarray]], select: list[tuple[np.ndarray, np.ndarray]],
                      alpha: float, delta: float) -> tuple[float, str]:
    scores = np.concatenate([s for s, _ in select])
    member = np.concatenate([m for _, m in select])
    candidates = np.unique(np.quantile(scores, np.linspace(0, 1, MAX_CANDIDATES)))
    tp, fp = _counts_at(candidates, scores, member)
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    chosen = threshold_epsilon(cp_lower(tp, n_pos, alpha / 2), cp_upper(fp, n_neg, alpha / 2), delta)
    t = float(candidates[int(np.argmax(chosen))])
    level = alpha / (2 * len(parts))
    best = 0.0
    for s, m in parts:
        tp_e, fp_e = _counts_at(np.array([t]), s, m)
        eps = threshold_epsilon(cp_lower(tp_e, int(m.sum()), level), cp_upper(fp_e, int((~m).sum()), level), delta)
        best = max(best, float(eps[0]))
    return best, f"score >= {t:.6g}"


def _right_guesses(scores: np.ndarray, member: np.ndarray, k_in: np.ndarray, k_out: np.ndarray) -> np.ndarray:
    """Right guesses when the k_in highest scores are called IN and the k_out lowest OUT (k_in + k_out <= m)."""
    ranked = member[np.argsort(scores, kind="stable")]  # membership, lowest score first
    in_right = np.concatenate([[0], np.cumsum(ranked[::-1])])  # right IN guesses among the top k
    out_right = np.concatenate([[0], np.cumsum(~ranked)])  # right OUT guesses among the bottom k
    return in_right[k_in] + out_right[k_out]


def _one_run_method(parts: list[tuple[np.ndarray, np.ndarray]], select: list[tuple[np.ndarray, np.ndarray]],
                    alpha: float, delta: float) -> tuple[float, str]:
    m = min(len(s) for s, _ in parts + select)
    counts = sorted({max(1, int(round(share * m))) for share in SHARES})
    grid = np.array([(k_in, k_out) for k_in in counts for k_out in [0, *counts] if k_in + k_out <= m])
    k_in, k_out = grid[:, 0], grid[:, 1]
    level = alpha - 2 * m * delta  # callers audit at most alpha / (4 delta) samples per target: level >= alpha / 2
    chosen = np.mean([one_run_epsilon(k_in + k_out, _right_guesses(s, mem, k_in, k_out), level)
                      for s, mem in select], axis=0)
    best_in, best_out = (int(v) for v in grid[int(np.argmax(chosen))])
    per_target = level / len(parts)
    best = max(float(one_run_epsilon(best_in + best_out, _right_guesses(s, mem, np.array([best_in]),
                                                                        np.array([best_out]))[0], per_target))
               for s, mem in parts)
    return best, f"{best_in} IN and {best_out} OUT guesses per target"


def audit_epsilon(scores: np.ndarray, membership: np.ndarray, target: np.ndarray, method: str = "one-run",
                  delta: float = 1e-5, confidence: float = 0.95, seed: int = 0) -> EpsilonBound:
    """A lower bound on epsilon, valid with probability ``confidence``, from pooled attack scores.

    ``target`` says which model each row was scored against; half of the targets (seeded)
    choose the threshold or the guesses, the other half are bounded (see the module docstring).
    """
    if method not in METHODS:
        raise ValueError(f"unknown epsilon method {method!r}; methods: {', '.join(METHODS)}")
    scores, member, target = np.asarray(scores, float), np.asarray(membership, bool), np.asarray(target)
    choose, bound = _split_targets(target, seed)
    if len(choose) == 0 or len(bound) == 0:
        return EpsilonBound(math.nan, method, delta, confidence, 0, "one target: nothing left to choose on")

    alpha = 1 - confidence
    audited = np.ones(len(scores), bool)
    if method == "one-run":  # its delta term grows with the samples audited: keep 2 m delta <= alpha / 2
        audited = _audited(target, int(alpha / (4 * delta)) if delta > 0 else len(scores), seed)

    def parts(ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(scores[(target == t) & audited], member[(target == t) & audited]) for t in ids]

    run = _threshold_method if method == "threshold" else _one_run_method
    eps, choice = run(parts(bound), parts(choose), alpha, delta)
    return EpsilonBound(eps, method, delta, confidence, len(bound), choice)
