"""RMIA (Zarifzadeh et al. 2024, "Low-Cost High-Power Membership Inference Attacks"), offline and online.

With Pr(s | theta) = p_y(s), the softmax probability of the true label (``signal:
confidence``; ``hinge`` and ``scaled-logit`` put exp of the margin or of phi in its
place for adaptive attacks, see :func:`mibench_plugins.attacks.signals.likelihood_signal`),
and the shadow models as reference models:

- ``mode: offline`` (the default): Pr(s) = ((1 + a) / 2) * mean_OUT Pr(s | theta_ref)
  + (1 - a) / 2, the offline estimate of the marginal from the references that did not
  train on s (REFERENCE §4);
- ``mode: online`` (needs reference models that trained on about half of the evaluation
  samples each, as ``protocol: pool`` gives): Pr(s) = mean over *all* reference models
  of Pr(s | theta_ref), IN and OUT alike (those that trained on s and those that did
  not; one that had s carved out of its split counts as neither), with no ``a``
  correction (``a`` is not used) (REFERENCE §7);
- LR(s) = Pr(s | theta_target) / Pr(s);
- score(x) = fraction of population samples z with LR(x) / LR(z) > gamma.

``gamma: null`` (the default) means 2 offline (what ``rmia`` has always used) and 1
online. Online, LR(x) cannot much exceed 2 for a member: about half the references in
Pr(x) trained on x and are about as confident as the target, so Pr(x) >= Pr(x |
target) / 2 roughly, while LR(z) is about 1. With gamma 2 a member then rarely beats a
z: on a strong planted leak (tests/test_online_attacks.py) online RMIA reached AUC 0.74
with gamma 2 and 1.0 with gamma 1. The paper's main results use gamma 1.

The population z is drawn (seeded, ``population_size`` of them) from
``ctx.population``, which the target never saw: the shadow half under the paper's
protocol (every shadow trained on about half of it), the rest of the pool under the
pool protocol (no reference model trained on it). Pr(z) is estimated exactly as Pr(x)
is, in the same mode: offline from each z's OUT shadows with the same correction,
online from all its references (a z with no OUT shadow is not drawn).

The count is sort-based: with the LR(z) sorted, LR(x) / LR(z) > gamma <=> LR(z) <
LR(x) / gamma is one binary search per x, so the cost grows as (n + m) log m, not n * m.

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); with one shadow there is none (and no balanced accuracy).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from mibench.sdk import Params, ReferenceAttack, ReferenceNeeds, Table, hookimpl
from mibench_plugins.attacks.signals import Signal, likelihood_signal

TINY = 1e-300  # floor of the marginal Pr(s), so that an LR is always finite


class RMIAParams(Params):
    mode: Literal["offline", "online"] = Field(
        "offline",
        description="offline: Pr(x) from OUT references with the factor a; online: mean over all references "
        "(needs reference models trained on the evaluation samples, protocol: pool).",
    )
    a: float = Field(0.3, ge=0, le=1, description="Offline mode only: Pr(x) = (1+a)/2 * mean_OUT + (1-a)/2.")
    gamma: float | None = Field(
        None,
        gt=0,
        description="x beats z when LR(x) / LR(z) > gamma (the paper uses 1 or 2). null (auto): 2 offline, 1 online.",
    )
    signal: Signal = Field(
        "confidence",
        description="Pr(x | theta) of the likelihood ratio: confidence (p_y, the paper's), loss (exp(-CE), the same "
        "as confidence), scaled-logit (the odds exp(phi)) or hinge (exp(g_y - max_{i != y} g_i)).",
    )
    population_size: int | None = Field(
        10000, ge=1, description="Population samples z drawn from the shadow half (null: all of them)."
    )


def marginal(table: Table, a: float, mode: str = "offline") -> np.ndarray:
    """Pr(s): offline ((1 + a)/2) * mean_OUT + (1 - a)/2; online the mean over IN and OUT references. NaN without."""
    if mode == "online":  # the mean over every reference that is IN or OUT for s (a table with those as "out")
        return Table(table.target, table.refs, table.out | table.is_in).out_mean()
    return (1 + a) / 2 * table.out_mean() + (1 - a) / 2


def likelihood_ratio(table: Table, a: float, mode: str = "offline") -> np.ndarray:
    """LR(s) = Pr(s | target) / Pr(s), with the ``mode``'s estimate of Pr(s); NaN where it has no references."""
    return table.target / np.maximum(marginal(table, a, mode), TINY)


def dominance(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float) -> np.ndarray:
    """For each x, the fraction of z with lr_x / lr_z > gamma; O((n + m) log m). NaN stays NaN."""
    lr_z = np.sort(lr_z[np.isfinite(lr_z)])
    if len(lr_z) == 0:
        raise ValueError("RMIA needs at least one population sample")
    counts = np.searchsorted(lr_z, lr_x / gamma, side="left")  # z with lr_z < lr_x / gamma
    return np.where(np.isnan(lr_x), np.nan, counts / len(lr_z))


def resolved_gamma(params: RMIAParams) -> float:
    """``params.gamma``, or with null (auto) 2.0 offline and 1.0 online."""
    if params.gamma is not None:
        return params.gamma
    return 1.0 if params.mode == "online" else 2.0


class RMIAAttack(ReferenceAttack):
    """RMIA (Zarifzadeh et al. 2024), offline or online: share of population z with LR(x)/LR(z) > gamma."""

    name = "rmia"
    Params = RMIAParams

    @classmethod
    def needs(cls, params):
        if params is not None and params.mode == "online":
            return ReferenceNeeds(count=1, mode="online")
        return ReferenceNeeds()

    def signal(self, logits, labels):
        return likelihood_signal(self.params.signal, logits, labels)

    def population_size(self):
        return self.params.population_size

    def compare(self, x, z, ctx):
        p = self.params
        return dominance(likelihood_ratio(x, p.a, p.mode), likelihood_ratio(z, p.a, p.mode), resolved_gamma(p))


@hookimpl
def register_attacks(register):
    register(RMIAAttack)
