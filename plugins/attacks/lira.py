"""LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles"), offline and online.

phi(x) = log p_y - log sum_{i != y} p_i (the logit-scaled confidence), computed in
float64 straight from the logits: phi = g_y - logsumexp_{i != y} g_i
(:func:`mibench.sdk.class_log_odds`). The reference models are the shadow models.
``signal`` replaces phi for adaptive attacks (:mod:`mibench_plugins.attacks.signals`):
``hinge`` (g_y - max_{i != y} g_i, which Aerni et al. use against RelaxLoss), ``loss``
(log p_y) or ``confidence`` (p_y); the Gaussians and the score are the same.

``mode: offline`` (the default; the paper's protocol, where no shadow trained on an
evaluation sample): for each evaluation sample a Gaussian N(mu, sigma^2) is fitted to
phi under its OUT references (maximum-likelihood mean and standard deviation), and
the score is the one-sided test of the paper's offline Algorithm 1, as a log p-value:
score = -log Pr[Z >= phi_target], Z ~ N(mu, sigma^2). A score of 6.9 means
"p = 0.001 under the non-member hypothesis".

``mode: online`` (needs reference models that trained on about half of the evaluation
samples each, as ``protocol: pool`` gives): per sample, N(mu_in, s_in^2) is fitted to
phi over the IN references and N(mu_out, s_out^2) over the OUT ones, and score =
log N(phi_target; mu_in, s_in) - log N(phi_target; mu_out, s_out), a log likelihood
ratio (REFERENCE §7). Online fits are predictive: unbiased variances, widened by
1 + 1/n for n references (see :func:`_predictive`; it removes a bias against members
in small pools).

Variance (``fix_variance``): ``true`` uses one sigma per side for every sample (offline:
the root mean of the per-sample OUT variances; online: one s_in pooled over the IN
references, one s_out over the OUT ones); ``false`` fits each sample's own.
``null`` (the default) means "auto", and differs by mode:

- online: fixed variance with fewer than ``PER_SAMPLE_VARIANCE_MIN_MODELS`` (64) reference
  models, per-sample from 64 on (Carlini et al. report the fixed variance as better for
  small pools, where a per-sample sigma rests on a handful of values). The count is the
  run's number of shadow models, so that calibration (leave-one-out, one fewer) uses the
  same rule as the target.
- offline: per-sample against offline shadows (the paper's protocol, where every shadow
  is OUT for every sample: what ``lira`` has always done, so results stay those of
  earlier runs); against a model pool's references (``protocol: pool``, about half of
  them OUT for a sample, so a per-sample sigma rests on fewer still) as online: fixed
  below 64 reference models.

A sample the Gaussians cannot be fitted for gets no score (NaN): per-sample needs two
references on each side it fits (OUT offline; IN and OUT online), fixed variance one.

Where the authors' code differs (tensorflow/privacy research/mi_lira_2021, plot.py):
it scores offline with -logpdf of the OUT Gaussian (two-sided: a sample far *below* the
OUT mean also looks like a member), takes the median for the mean, and averages over
augmented queries. mibench follows the paper's one-sided test; ``flip: true`` adds the
code's mirrored query (phi averaged over the sample and its horizontal mirror). The
code's fixed variance pools every value instead of averaging per-sample variances (for
the one-sided offline score the ranking does not depend on which global sigma is used,
only the scale does).

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); offline, a calibration sample needs two OUT shadows,
so with ``shadow.count: 2`` there is none (and no balanced accuracy).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from scipy.special import log_ndtr

from mibench.sdk import Params, ReferenceAttack, ReferenceNeeds, Table, hookimpl, unit_inputs
from mibench_plugins.attacks.signals import Signal, membership_signal

FLIP_BATCH = 1024  # samples per mirrored query batch

MIN_STD = 1e-12  # a sigma floor, so that identical shadow outputs give a finite z
# Below this many reference models, "auto" online LiRA uses the fixed (global) variance:
# Carlini et al. (2022) report it better than per-sample variances for small pools.
PER_SAMPLE_VARIANCE_MIN_MODELS = 64


class LiRAParams(Params):
    mode: Literal["offline", "online"] = Field(
        "offline",
        description="offline: Gaussian of OUT references, one-sided p-value; online: IN vs OUT Gaussians "
        "(needs reference models trained on the evaluation samples, protocol: pool).",
    )
    flip: bool = Field(
        False,
        description="Also query every model on the horizontal mirror of each sample and average the two phi's "
        "(as Carlini et al.'s code does; one more black-box pass per sample and model).",
    )
    signal: Signal = Field(
        "scaled-logit",
        description="The per-model membership signal the Gaussians are fitted to: scaled-logit (phi, the paper's), "
        "hinge (g_y - max_{i != y} g_i; Aerni et al. against RelaxLoss), loss (log p_y) or confidence (p_y).",
    )
    fix_variance: bool | None = Field(
        None,
        description="One global sigma per side for every sample. null (auto): online, fixed below "
        f"{PER_SAMPLE_VARIANCE_MIN_MODELS} reference models; offline, per-sample.",
    )


def scaled_logit(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = log p_y - log(sum_{i != y} p_i) = g_y - logsumexp_{i != y} g_i, in float64."""
    return membership_signal("scaled-logit", logits, labels)


def uses_fixed_variance(fix_variance: bool | None, mode: str, reference_models: int, pool: bool = False) -> bool:
    """Resolve ``fix_variance`` (None: auto, see the module docstring) for a run with that many references.

    ``pool``: the references trained on evaluation samples (a model pool), not offline shadows.
    """
    if fix_variance is not None:
        return fix_variance
    return (mode == "online" or pool) and reference_models < PER_SAMPLE_VARIANCE_MIN_MODELS


def _side(x: Table, inside: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample, over its IN (``inside``) or OUT references: their count, mean and sum of squared deviations."""
    mask = x.is_in if inside else x.out
    mean = x.in_mean() if inside else x.out_mean()
    with np.errstate(invalid="ignore"):
        return mask.sum(0), mean, np.where(mask, (x.refs - mean) ** 2, 0.0).sum(0)


def _fit(x: Table, inside: bool, fix_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per sample of its IN (``inside``) or OUT references: ML estimates, NaN where unfitted.

    Per-sample: NaN with fewer than two references. Fixed: one std for all, the root
    mean of the per-sample variances (those with two or more references); a sample
    then needs one reference (for its mean).
    """
    count, mean, squares = _side(x, inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = squares / count
    var = np.where(count >= 2, var, np.nan)
    if fix_variance:
        fitted = var[np.isfinite(var)]
        var = np.full(len(x), fitted.mean() if len(fitted) else np.nan)
    return mean, np.maximum(np.sqrt(var), MIN_STD)


def lira_offline_scores(x: Table, fix_variance: bool = False) -> np.ndarray:
    """-log Pr[Z >= phi_target] with Z ~ N(mean, std^2) of each sample's OUT references.

    NaN for a sample with fewer than two OUT references (one, with ``fix_variance``).
    """
    mean, std = _fit(x, False, fix_variance)
    return -log_ndtr(-(x.target - mean) / std)


def _log_normal_pdf(t: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """log N(t; mean, std^2) in float64, without the constant -log(2 pi) / 2 (it cancels in a ratio)."""
    return -0.5 * ((t - mean) / std) ** 2 - np.log(std)


def _predictive(x: Table, inside: bool, fix_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per sample of the predictive Gaussian of a new model's phi, from its IN or OUT references.

    With n references of mean m and variance s^2 (unbiased: sums of squares over n - 1;
    fixed: one s^2 pooled over every sample with two or more references, sum of squares
    over sum of n - 1), a new draw is N(m, s^2 (1 + 1/n)): with the handful of references
    per side a small pool gives, the plain maximum-likelihood fit is too narrow.
    """
    n, mean, squares = _side(x, inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        if fix_variance:
            fitted = n >= 2
            pooled = squares[fitted].sum() / (n[fitted] - 1).sum() if fitted.any() else np.nan
            var = np.full(len(x), pooled)
        else:
            var = np.where(n >= 2, squares / (n - 1), np.nan)
        var = np.where(n >= 1, var * (1 + 1 / n), np.nan)
    return mean, np.maximum(np.sqrt(var), MIN_STD)


def lira_online_scores(x: Table, fix_variance: bool = False) -> np.ndarray:
    """log N(phi_target; mu_in, s_in) - log N(phi_target; mu_out, s_out), per sample (predictive Gaussians).

    NaN for a sample with fewer than two IN or two OUT references (one each, with
    ``fix_variance``: one pooled s_in and one pooled s_out).
    """
    mean_in, std_in = _predictive(x, True, fix_variance)
    mean_out, std_out = _predictive(x, False, fix_variance)
    with np.errstate(invalid="ignore"):
        return _log_normal_pdf(x.target, mean_in, std_in) - _log_normal_pdf(x.target, mean_out, std_out)


class LiRAAttack(ReferenceAttack):
    """LiRA (Carlini et al. 2022): offline one-sided test against OUT shadows, or online IN/OUT likelihood ratio."""

    name = "lira"
    Params = LiRAParams

    @classmethod
    def needs(cls, params):
        if params is not None and params.mode == "online":
            return ReferenceNeeds(count=2, mode="online")
        return ReferenceNeeds(count=2)

    def signal(self, logits, labels):
        return membership_signal(self.params.signal, logits, labels)

    def model_signal(self, model, indices):
        """The signal of the sample; with ``flip``, its mean over the sample and its mirror (black-box queries)."""
        phi = super().model_signal(model, indices)
        if not self.params.flip:
            return phi
        mirrored = [np.zeros(0)]
        for start in range(0, len(indices), FLIP_BATCH):
            chunk = np.asarray(indices[start : start + FLIP_BATCH])
            logits = model.query(unit_inputs(model.pool, chunk, model.device).flip(-1))
            mirrored.append(self.signal(logits, model.labels(chunk)))
        return (phi + np.concatenate(mirrored)) / 2

    def compare(self, x, z, ctx):
        # fix_variance: auto looks at the run's reference models (all of them, in calibration too) and
        # whether they trained on evaluation samples (a pool's); both come from the context.
        fixed = uses_fixed_variance(self.params.fix_variance, self.params.mode, len(ctx.references),
                                    ctx.pool_models > 0)
        if self.params.mode == "online":
            return lira_online_scores(x, fixed)
        return lira_offline_scores(x, fixed)


@hookimpl
def register_attacks(register):
    register(LiRAAttack)
