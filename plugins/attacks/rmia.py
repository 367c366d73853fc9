"""Offline RMIA (Zarifzadeh et al. 2024, "Low-Cost High-Power Membership Inference Attacks").

With Pr(s | theta) = p_y(s), the softmax probability of the true label, and the shadow
models as reference models:

- Pr(s) = ((1 + a) / 2) * mean_OUT Pr(s | theta_ref) + (1 - a) / 2, the offline estimate
  of the marginal from the references that did not train on s (REFERENCE §4);
- LR(s) = Pr(s | theta_target) / Pr(s);
- score(x) = fraction of population samples z with LR(x) / LR(z) > gamma.

The population z is drawn (seeded, ``population_size`` of them) from the shadow half
(``ctx.population``), which the target never saw. Every shadow trained on about half
of it, so Pr(z) is estimated exactly as Pr(x) is: from each z's OUT shadows, with the
same correction (a z with no OUT shadow is not drawn). The count is sort-based: with
the LR(z) sorted, LR(x) / LR(z) > gamma <=> LR(z) < LR(x) / gamma is one binary
search per x, so the cost grows as (n + m) log m, not n * m.

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); with one shadow there is none (and no balanced accuracy).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from mibench.sdk import Params, ReferenceAttack, Table, hookimpl, true_class_prob

TINY = 1e-300  # floor of the marginal Pr(s), so that an LR is always finite


class RMIAParams(Params):
    a: float = Field(0.3, ge=0, le=1, description="Offline correction: Pr(x) = (1+a)/2 * mean_OUT + (1-a)/2.")
    gamma: float = Field(2.0, gt=0, description="x beats z when LR(x) / LR(z) > gamma (the paper uses 1 or 2).")
    population_size: int | None = Field(
        10000, ge=1, description="Population samples z drawn from the shadow half (null: all of them)."
    )


def true_label_probability(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """p_y = softmax(logits)_y, in float64."""
    return true_class_prob(logits.double(), labels).numpy()


def likelihood_ratio(table: Table, a: float) -> np.ndarray:
    """LR(s) = Pr(s | target) / Pr(s), with the offline estimate of Pr(s); NaN without OUT references."""
    marginal = (1 + a) / 2 * table.out_mean() + (1 - a) / 2
    return table.target / np.maximum(marginal, TINY)


def dominance(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float) -> np.ndarray:
    """For each x, the fraction of z with lr_x / lr_z > gamma; O((n + m) log m). NaN stays NaN."""
    lr_z = np.sort(lr_z[np.isfinite(lr_z)])
    if len(lr_z) == 0:
        raise ValueError("RMIA needs at least one population sample")
    counts = np.searchsorted(lr_z, lr_x / gamma, side="left")  # z with lr_z < lr_x / gamma
    return np.where(np.isnan(lr_x), np.nan, counts / len(lr_z))


class RMIAAttack(ReferenceAttack):
    """Offline RMIA (Zarifzadeh et al. 2024): share of population z with LR(x)/LR(z) > gamma."""

    name = "rmia"
    Params = RMIAParams

    def statistic(self, logits, labels):
        return true_label_probability(logits, labels)

    def population_size(self):
        return self.params.population_size

    def score(self, x, z):
        return dominance(likelihood_ratio(x, self.params.a), likelihood_ratio(z, self.params.a), self.params.gamma)


@hookimpl
def register_attacks(register):
    register(RMIAAttack)
