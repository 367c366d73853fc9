"""Offline LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles").

phi(x) = log p_y - log sum_{i != y} p_i (the logit-scaled confidence), computed in
float64 straight from the logits: phi = g_y - logsumexp_{i != y} g_i. For each
evaluation sample a Gaussian N(mu, sigma^2) is fitted to phi under the shadow models
(the OUT models: none trained on target data; maximum-likelihood mean and standard
deviation), and the score is the one-sided test of the paper's offline Algorithm 1,
as a log p-value: score = -log Pr[Z >= phi_target], Z ~ N(mu, sigma^2). A score of
6.9 means "p = 0.001 under the non-member hypothesis".

Where the authors' code differs (tensorflow/privacy research/mi_lira_2021, plot.py):
it scores offline with -logpdf of the OUT Gaussian (two-sided: a sample far *below* the
OUT mean also looks like a member), takes the median for the mean, and averages over
augmented queries. mibench follows the paper's one-sided test and queries once.
``fix_variance`` uses one sigma for all samples, the root mean of the per-sample
variances (the code pools every value instead; for the one-sided score the ranking
does not depend on which global sigma is used, only the scale does).

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); a calibration sample needs two OUT shadows, so with
``shadow.count: 2`` there is none (and no balanced accuracy).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from scipy.special import log_ndtr

from mibench.sdk import Params, ReferenceAttack, ShadowNeeds, Table, hookimpl

MIN_STD = 1e-12  # a sigma floor, so that identical shadow outputs give a finite z


class LiRAParams(Params):
    fix_variance: bool = Field(
        False, description="One global sigma for every sample (Carlini et al. advise it for few shadow models)."
    )


def scaled_logit(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = log p_y - log(sum_{i != y} p_i) = g_y - logsumexp_{i != y} g_i, in float64."""
    g = logits.double()
    y = labels.view(-1, 1)
    others = g.scatter(1, y, float("-inf"))
    return (g.gather(1, y).squeeze(1) - torch.logsumexp(others, 1)).numpy()


def lira_offline_scores(x: Table, fix_variance: bool = False) -> np.ndarray:
    """-log Pr[Z >= phi_target] with Z ~ N(mean, std^2) of each sample's OUT references.

    NaN for a sample with fewer than two OUT references (one, with ``fix_variance``).
    """
    count = x.out.sum(0)
    mean = x.out_mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(x.out, (x.refs - mean) ** 2, 0.0).sum(0) / count
    var = np.where(count >= 2, var, np.nan)
    if fix_variance:
        fitted = var[np.isfinite(var)]
        var = np.full(len(x), fitted.mean() if len(fitted) else np.nan)
    std = np.maximum(np.sqrt(var), MIN_STD)
    return -log_ndtr(-(x.target - mean) / std)


class LiRAAttack(ReferenceAttack):
    """Offline LiRA (Carlini et al. 2022): per-sample Gaussian of phi under OUT shadows; score -log p-value."""

    name = "lira"
    Params = LiRAParams
    shadow_needs = ShadowNeeds(count=2)

    def statistic(self, logits, labels):
        return scaled_logit(logits, labels)

    def score(self, x, z):
        return lira_offline_scores(x, self.params.fix_variance)


@hookimpl
def register_attacks(register):
    register(LiRAAttack)
