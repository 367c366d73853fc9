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

Queries (``augmentations``): ``none`` (the default) scores the plain image from the cached
logits; ``mirror`` adds its horizontal mirror (2 views, the authors' default in
inference.py); ``mirror-shifts`` every shift (dx, dy) in [-s, s]^2 (s = ``shift``) of the
image and of its mirror, the border reflect-filled as the authors' pad-and-crop does
(2 (2s + 1)^2 views: 18 at s = 1). Every view but the plain image is a black-box query of
each model (the target's are counted in ``target_queries``). ``combine`` says how views
make one score: ``score-mean`` (the authors', plot.py) fits the Gaussians to each view's
signal on its own and averages the per-view scores; ``signal-mean`` averages the signal
over the views first and fits one Gaussian (what ``flip: true`` did, kept under this
name; ``flip: true`` still means ``augmentations: mirror, combine: signal-mean``).

Variance (``fix_variance``):

- ``per-sample``: each sample's own sigma per side (``false`` in earlier grids);
- ``per-side``: one sigma per side for every sample (online: s_in pooled over the IN
  references of all samples and views, s_out over the OUT ones; offline: the root mean of
  the per-sample OUT variances), the paper's fixed variance (``true`` in earlier grids);
- ``shared``: the authors' code (plot.py, fix_variance=True): one sigma for both sides,
  so the online score is linear in phi. Its value then scales every score alike and the
  ranking does not depend on it: mibench takes the IN side's pooled sigma, the code the
  standard deviation of all IN values (between samples too). Offline there is one side
  only, and ``shared`` is ``per-side``. On a synthetic case with unequal IN and OUT
  variances ``per-side`` was the stronger (AUC 0.879 against 0.826);
- ``auto`` (the default; ``null`` in earlier grids) differs by mode:

  - online: ``per-side`` with fewer than ``PER_SAMPLE_VARIANCE_MIN_MODELS`` (64) reference
    models, ``per-sample`` from 64 on (Carlini et al. report the fixed variance as better
    for small pools, where a per-sample sigma rests on a handful of values). The count is
    the run's number of shadow models, so that calibration (leave-one-out, one fewer) uses
    the same rule as the target.
  - offline: ``per-sample`` against offline shadows (the paper's protocol, where every
    shadow is OUT for every sample: what ``lira`` has always done, so results stay those
    of earlier runs); against a model pool's references (``protocol: pool``, about half of
    them OUT for a sample, so a per-sample sigma rests on fewer still) as online.

A sample the Gaussians cannot be fitted for gets no score (NaN): per-sample needs two
references on each side it fits (OUT offline; IN and OUT online), fixed variance one.

``preset: authors`` sets what is not given to the authors' form: ``augmentations:
mirror``, ``combine: score-mean``, ``fix_variance: shared``. What still differs from
their code (tensorflow/privacy research/mi_lira_2021): it takes the median of each side
for the mean (mibench the mean); its online Gaussians are maximum-likelihood fits
(mibench's are predictive, widened by 1 + 1/n, which removes a bias against members in
small pools; ``shared`` is not widened); offline it scores with -logpdf of the OUT
Gaussian (two-sided: a sample far *below* the OUT mean also looks like a member), where
mibench follows the paper's one-sided test; it queries models in training mode (batch
norm on the batch's statistics), mibench in eval mode; its 18-view setting pads by the
shift and crops, as ``mirror-shifts`` does.

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); offline, a calibration sample needs two OUT shadows,
so with ``shadow.count: 2`` there is none (and no balanced accuracy).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from scipy.special import log_ndtr

from mibench.sdk import ReferenceAttack, ReferenceNeeds, Table, hookimpl
from mibench.sdk.reference_attack import side_mask
from mibench_plugins.attacks.presets import AuthorsPreset
from mibench_plugins.attacks.signals import Signal, membership_signal
from mibench_plugins.attacks.views import ViewParams, view_signals

MIN_STD = 1e-12  # a sigma floor, so that identical shadow outputs give a finite z
# Below this many reference models, "auto" online LiRA uses the fixed (global) variance:
# Carlini et al. (2022) report it better than per-sample variances for small pools.
PER_SAMPLE_VARIANCE_MIN_MODELS = 64


Variance = Literal["auto", "per-sample", "per-side", "shared"]
_LEGACY_VARIANCE = {None: "auto", True: "per-side", False: "per-sample"}  # fix_variance of earlier grids

# preset: authors (Carlini et al.'s code): what a param left unset takes.
AUTHORS = {"augmentations": "mirror", "combine": "score-mean", "fix_variance": "shared"}


class LiRAParams(ViewParams, AuthorsPreset):
    AUTHORS = AUTHORS

    preset: Literal["authors"] | None = Field(
        None, description="authors: the authors' form (augmentations mirror, combine score-mean, fix_variance "
        "shared) for every param not given.")
    mode: Literal["offline", "online"] = Field(
        "offline",
        description="offline: Gaussian of OUT references, one-sided p-value; online: IN vs OUT Gaussians "
        "(needs reference models trained on the evaluation samples, protocol: pool).",
    )
    combine: Literal["score-mean", "signal-mean"] = Field(
        "score-mean", description="How views make one score: score-mean (one Gaussian per view, the scores "
        "averaged: the authors'); signal-mean (the signal averaged over views, one Gaussian).")
    flip: bool = Field(
        False, description="Deprecated: true means augmentations mirror with combine signal-mean.")
    signal: Signal = Field(
        "scaled-logit",
        description="The per-model membership signal the Gaussians are fitted to: scaled-logit (phi, the paper's), "
        "hinge (g_y - max_{i != y} g_i; Aerni et al. against RelaxLoss), loss (log p_y) or confidence (p_y).",
    )
    fix_variance: Variance = Field(
        "auto",
        description="per-sample sigmas; per-side (one sigma per side, the paper's fixed variance); shared (one "
        f"sigma for both sides, the authors' code); auto: online per-side below {PER_SAMPLE_VARIANCE_MIN_MODELS} "
        "reference models, else per-sample; offline per-sample (against a pool as online).",
    )

    @model_validator(mode="before")
    @classmethod
    def _earlier_forms(cls, data: Any) -> Any:
        """``fix_variance`` true/false/null and ``flip: true`` of earlier grids (``preset`` is AuthorsPreset's)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        variance = data.get("fix_variance", "unset")
        if isinstance(variance, bool) or variance is None:
            data["fix_variance"] = _LEGACY_VARIANCE[variance]
        if data.get("flip") is True:
            if data.get("augmentations", "none") != "none" or data.get("combine", "signal-mean") != "signal-mean":
                raise ValueError("flip: true means augmentations: mirror with combine: signal-mean; give those "
                                 "instead of flip, not beside it")
            data.update(augmentations="mirror", combine="signal-mean")
        return data

def scaled_logit(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = log p_y - log(sum_{i != y} p_i) = g_y - logsumexp_{i != y} g_i, in float64."""
    return membership_signal("scaled-logit", logits, labels)


def resolved_variance(fix_variance: str, mode: str, reference_models: int, pool: bool = False) -> str:
    """``fix_variance`` with ``auto`` resolved (see the module docstring) for a run with that many references.

    ``pool``: the references trained on evaluation samples (a model pool), not offline shadows.
    """
    if fix_variance != "auto":
        return fix_variance
    small = reference_models < PER_SAMPLE_VARIANCE_MIN_MODELS
    return "per-side" if (mode == "online" or pool) and small else "per-sample"


def _side(x: Table, inside: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample (and view), over its IN (``inside``) or OUT references: their count, mean and sum of squared deviations."""
    mask = side_mask(x.is_in if inside else x.out, x.refs)
    mean = x.in_mean() if inside else x.out_mean()
    with np.errstate(invalid="ignore"):
        count = np.broadcast_to(mask.sum(0), mean.shape)
        return count, mean, np.where(mask, (x.refs - mean) ** 2, 0.0).sum(0)


def _fit(x: Table, inside: bool, fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per sample of its IN (``inside``) or OUT references: ML estimates, NaN where unfitted.

    Per-sample: NaN with fewer than two references. Fixed: one std for all, the root
    mean of the per-sample variances (those with two or more references); a sample
    then needs one reference (for its mean).
    """
    count, mean, squares = _side(x, inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = squares / count
    var = np.where(count >= 2, var, np.nan)
    if fixed:
        fitted = var[np.isfinite(var)]
        var = np.full(var.shape, fitted.mean() if len(fitted) else np.nan)
    return mean, np.maximum(np.sqrt(var), MIN_STD)


def lira_offline_scores(x: Table, fix_variance: bool | str = False) -> np.ndarray:
    """-log Pr[Z >= phi_target] with Z ~ N(mean, std^2) of each sample's OUT references (averaged over views).

    NaN for a sample with fewer than two OUT references (one, with a fixed variance:
    ``True``, ``per-side`` or ``shared``, the same offline).
    """
    mean, std = _fit(x, False, fix_variance not in (False, "per-sample"))
    return _view_mean(-log_ndtr(-(x.target - mean) / std))


def _log_normal_pdf(t: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """log N(t; mean, std^2) in float64, without the constant -log(2 pi) / 2 (it cancels in a ratio)."""
    return -0.5 * ((t - mean) / std) ** 2 - np.log(std)


def _pooled_variance(n: np.ndarray, squares: np.ndarray) -> float:
    """One unbiased variance over every sample (and view) with two or more references: sum of squares over sum of n - 1."""
    fitted = n >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return squares[fitted].sum() / (n[fitted] - 1).sum() if fitted.any() else np.nan


def _predictive(x: Table, inside: bool, fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per sample of the predictive Gaussian of a new model's phi, from its IN or OUT references.

    With n references of mean m and variance s^2 (unbiased: sums of squares over n - 1;
    fixed: one s^2 pooled over every sample with two or more references, sum of squares
    over sum of n - 1), a new draw is N(m, s^2 (1 + 1/n)): with the handful of references
    per side a small pool gives, the plain maximum-likelihood fit is too narrow.
    """
    n, mean, squares = _side(x, inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        if fixed:
            var = np.full(mean.shape, _pooled_variance(n, squares))
        else:
            var = np.where(n >= 2, squares / (n - 1), np.nan)
        var = np.where(n >= 1, var * (1 + 1 / n), np.nan)
    return mean, np.maximum(np.sqrt(var), MIN_STD)


def _view_mean(scores: np.ndarray) -> np.ndarray:
    """One score per sample: the mean over the trailing view axis, if there is one (the authors' score.mean)."""
    return scores.mean(axis=tuple(range(1, scores.ndim))) if scores.ndim > 1 else scores


def lira_online_scores(x: Table, fix_variance: bool | str = False) -> np.ndarray:
    """log N(phi_target; mu_in, s_in) - log N(phi_target; mu_out, s_out), per sample and view, averaged over views.

    ``fix_variance``: False / ``per-sample`` (predictive Gaussians per sample), True /
    ``per-side`` (one pooled s_in, one pooled s_out) or ``shared`` (s_in for both sides, not
    widened). NaN for a sample with fewer than two IN or two OUT references (one each, fixed).
    """
    variance = {False: "per-sample", True: "per-side"}.get(fix_variance, fix_variance)
    if variance == "shared":
        n_in, mean_in, squares_in = _side(x, True)
        n_out, mean_out, _ = _side(x, False)
        std = np.maximum(np.sqrt(_pooled_variance(n_in, squares_in)), MIN_STD)
        with np.errstate(invalid="ignore"):
            score = _log_normal_pdf(x.target, mean_in, std) - _log_normal_pdf(x.target, mean_out, std)
        return _view_mean(np.where((n_in >= 1) & (n_out >= 1), score, np.nan))
    mean_in, std_in = _predictive(x, True, variance == "per-side")
    mean_out, std_out = _predictive(x, False, variance == "per-side")
    with np.errstate(invalid="ignore"):
        return _view_mean(_log_normal_pdf(x.target, mean_in, std_in) - _log_normal_pdf(x.target, mean_out, std_out))


class LiRAAttack(ReferenceAttack):
    """LiRA (Carlini et al. 2022): offline one-sided test against OUT shadows, or online IN/OUT likelihood ratio."""

    name = "lira"
    Params = LiRAParams

    @classmethod
    def needs(cls, params):
        if params is not None and params.mode == "online":
            return ReferenceNeeds(count=2, mode="online")
        return ReferenceNeeds(count=2)

    @classmethod
    def queries(cls, params):
        """The plain view comes from the cached prediction; every other view is one query."""
        return 0.0 if params is None else float(len(params.views()) - 1)

    def signal(self, logits, labels):
        return membership_signal(self.params.signal, logits, labels)

    def model_signal(self, model, indices):
        """The signal on each query view (n, views), or (n,) with one view or with ``combine: signal-mean``."""
        views = self.params.views()
        plain = super().model_signal(model, indices)
        if len(views) == 1:
            return plain
        signals = view_signals(model, indices, views, self.signal, plain)
        return signals.mean(1) if self.params.combine == "signal-mean" else signals

    def compare(self, x, z, ctx):
        # fix_variance: auto looks at the run's reference models (all of them, in calibration too) and
        # whether they trained on evaluation samples (a pool's); both come from the context.
        variance = resolved_variance(self.params.fix_variance, self.params.mode, len(ctx.references),
                                     ctx.pool_models > 0)
        if self.params.mode == "online":
            return lira_online_scores(x, variance)
        return lira_offline_scores(x, variance)


@hookimpl
def register_attacks(register):
    register(LiRAAttack)
