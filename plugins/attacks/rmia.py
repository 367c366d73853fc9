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
online (the paper's main results use 1; its authors' reproduction configs use 2). Online, LR(x) cannot much exceed 2 for a member: about half the references in
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

Where the authors' code differs (privacytrustlab/ml_privacy_meter, research/2023_rmia:
main.py, signals.py and the reproduction configs attack_configs/*/rmia_*.yaml), mibench
offers its form, and ``preset: authors`` sets it for every param not given:

- ``signal: taylor-soft-margin`` with ``temperature: 2``, ``margin: 0.6``,
  ``taylor_order: 4`` (the configs' sm_taylor_softmax_relative; ``softmax`` and
  ``soft-margin`` are its plainer relatives, :mod:`mibench_plugins.attacks.signals`);
- ``trimmed_mean: 0.2``: Pr(s) is the mean over the references after cutting 20% of them
  from each end (scipy.stats.trim_mean's rule: int(0.2 k) of k values per end);
- ``augmentations: mirror-shifts`` (18 views at ``shift: 1``: the image and its mirror,
  each shifted by every (dx, dy) in [-1, 1]^2, reflect-filled): LR per view, and x beats z
  when LR(x) / LR(z) > gamma on a majority of the views (a tie, possible with an even
  number of views, is no: torch.mode, which the code votes with, returns the smaller
  value on a tie). This compares every x with every z on every view: O(n m q), where one
  view is O((n + m) log m); keep ``population_size`` small (the preset: 1,000) on a CPU;
- ``gamma: 2`` online and offline alike (the configs' value; only the later library
  hard-codes 1), and ``a: 0.33``.

- ``population: target-nonmembers`` (online): z are the target's non-members from the
  sample set, about half of whose references trained on them, as in their online code.
  The engine then tells the attack which of its evaluation samples are non-members (z
  are drawn from them; canaries never): an auditor's game, not a black-box attacker's.
  mibench's default, ``never-trained``, draws z from samples no model trained on (the
  rest of the pool): Pr(z) is then an OUT-only mean while Pr(x) mixes IN and OUT, which
  is why gamma 2 scored members low in mibench's own test (tests/test_online_attacks.py)
  and ``gamma: null`` stays 1 online.

What still differs: their offline code is as mibench's (a trimmed mean over the OUT
references); their z under ``top_k`` (nearest population samples) is not offered.

Thresholds: one global threshold, calibrated leave-one-out on the shadows (see
:mod:`mibench.sdk.reference_attack`); with one shadow there is none (and no balanced accuracy).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from mibench.sdk import ReferenceAttack, ReferenceNeeds, Table, hookimpl
from mibench.sdk.reference_attack import masked_mean, side_mask
from mibench_plugins.attacks.presets import AuthorsPreset
from mibench_plugins.attacks.signals import LikelihoodSignal, likelihood_signal
from mibench_plugins.attacks.views import ViewParams, view_signals

TINY = 1e-300  # floor of the marginal Pr(s), so that an LR is always finite


# preset: authors (the reproduction configs of Zarifzadeh et al.): what a param left unset takes.
AUTHORS = {"signal": "taylor-soft-margin", "temperature": 2.0, "margin": 0.6, "taylor_order": 4,
           "trimmed_mean": 0.2, "augmentations": "mirror-shifts", "gamma": 2.0, "a": 0.33,
           "population_size": 1000, "population": "target-nonmembers"}


class RMIAParams(ViewParams, AuthorsPreset):
    AUTHORS = AUTHORS

    preset: Literal["authors"] | None = Field(
        None, description="authors: the authors' form (signal taylor-soft-margin at temperature 2, margin 0.6, "
        "order 4; trimmed mean 0.2; 18 views with a majority vote; gamma 2; a 0.33; 1,000 z) for every param "
        "not given.")
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
    signal: LikelihoodSignal = Field(
        "confidence",
        description="Pr(x | theta) of the likelihood ratio: confidence (p_y, the paper's), loss (exp(-CE), the same "
        "as confidence), scaled-logit (the odds exp(phi)), hinge (exp(g_y - max_{i != y} g_i)), or the authors' "
        "softmax (at temperature), soft-margin (and margin) and taylor-soft-margin (and taylor_order).",
    )
    temperature: float = Field(1.0, gt=0, description="softmax, soft-margin, taylor-soft-margin: logits / T.")
    margin: float = Field(0.0, description="soft-margin, taylor-soft-margin: m subtracted from g_y / T.")
    taylor_order: int = Field(4, ge=2, le=12, description="taylor-soft-margin: terms of the Taylor polynomial of e^u.")
    trimmed_mean: float = Field(
        0.0, ge=0, lt=0.5, description="Share of each sample's references cut from each end before Pr(s) is "
        "averaged (the authors': 0.2).")
    population_size: int | None = Field(
        10000, ge=1, description="Population samples z drawn from the shadow half (null: all of them)."
    )
    population: Literal["never-trained", "target-nonmembers"] = Field(
        "never-trained", description="online: z from samples no model trained on (mibench's), or from the "
        "target's non-members in the sample set, half of whose references trained on them (the authors'; the "
        "attack is then told which evaluation samples are non-members).")


def trimmed_mean(values: np.ndarray, mask: np.ndarray, proportion: float) -> np.ndarray:
    """Per column (and view), the mean of ``values`` over the rows ``mask`` (k, n) holds, int(proportion * count)
    of them cut from each end (scipy.stats.trim_mean's rule); NaN where none remain."""
    mask = side_mask(mask, values)
    if proportion == 0:
        return masked_mean(values, mask)
    count = np.broadcast_to(mask.sum(0), values.shape[1:])
    cut = (proportion * count).astype(np.int64)
    ordered = np.sort(np.where(mask, values, np.inf), axis=0)  # each column's values first, then inf
    rank = np.arange(len(values)).reshape((-1,) + (1,) * (values.ndim - 1))
    keep = (rank >= cut) & (rank < count - cut)
    return masked_mean(np.where(keep, ordered, 0.0), keep)


def marginal(table: Table, a: float, mode: str = "offline", trim: float = 0.0) -> np.ndarray:
    """Pr(s): offline ((1 + a)/2) * mean_OUT + (1 - a)/2; online the mean over IN and OUT references. NaN without.

    ``trim``: the share of references cut from each end before averaging (a trimmed mean).
    """
    if mode == "online":  # the mean over every reference that is IN or OUT for s
        return trimmed_mean(table.refs, table.out | table.is_in, trim)
    return (1 + a) / 2 * trimmed_mean(table.refs, table.out, trim) + (1 - a) / 2


def likelihood_ratio(table: Table, a: float, mode: str = "offline", trim: float = 0.0) -> np.ndarray:
    """LR(s) = Pr(s | target) / Pr(s), with the ``mode``'s estimate of Pr(s); NaN where it has no references."""
    return table.target / np.maximum(marginal(table, a, mode, trim), TINY)


def dominance(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float) -> np.ndarray:
    """For each x, the fraction of z with lr_x / lr_z > gamma; O((n + m) log m). NaN stays NaN.

    With one LR per view (lr_x (n, q), lr_z (m, q)), x beats z when it does on more than
    half of the views (:func:`voted_dominance`).
    """
    if lr_x.ndim > 1:
        return voted_dominance(lr_x, lr_z, gamma)
    lr_z = np.sort(lr_z[np.isfinite(lr_z)])
    if len(lr_z) == 0:
        raise ValueError("RMIA needs at least one population sample")
    counts = np.searchsorted(lr_z, lr_x / gamma, side="left")  # z with lr_z < lr_x / gamma
    return np.where(np.isnan(lr_x), np.nan, counts / len(lr_z))


VOTE_CHUNK = 2_000_000  # x-z-view comparisons per block of the vote


def voted_dominance(lr_x: np.ndarray, lr_z: np.ndarray, gamma: float) -> np.ndarray:
    """For each x (n, q), the fraction of z (m, q) that it beats, LR(x) / LR(z) > gamma, on a majority of the q views.

    A tie (q / 2 views each way) is no. O(n m q), in blocks of x.
    """
    lr_z = lr_z[np.isfinite(lr_z).all(1)]
    if len(lr_z) == 0:
        raise ValueError("RMIA needs at least one population sample")
    views = lr_x.shape[1]
    out = np.full(len(lr_x), np.nan)
    block = max(1, VOTE_CHUNK // (len(lr_z) * views))
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, len(lr_x), block):
            x = lr_x[start : start + block]
            wins = (x[:, None, :] / lr_z[None, :, :] > gamma).sum(2) * 2 > views
            out[start : start + block] = np.where(np.isnan(x).any(1), np.nan, wins.mean(1))
    return out


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
        population = "never-trained" if params is None else params.population
        if params is not None and params.mode == "online":
            return ReferenceNeeds(count=1, mode="online", population=population)
        return ReferenceNeeds(population=population)

    @classmethod
    def queries(cls, params):
        """The plain view comes from the cached prediction; every other view is one query (on the population samples z too)."""
        return 0.0 if params is None else float(len(params.views()) - 1)

    def signal(self, logits, labels):
        p = self.params
        return likelihood_signal(p.signal, logits, labels, p.temperature, p.margin, p.taylor_order)

    def model_signal(self, model, indices):
        """Pr(x | theta) of the sample, and with ``augmentations`` of each view (n, views)."""
        plain = super().model_signal(model, indices)
        views = self.params.views()
        return plain if len(views) == 1 else view_signals(model, indices, views, self.signal, plain)

    def population_size(self):
        return self.params.population_size

    def compare(self, x, z, ctx):
        p = self.params
        trim = p.trimmed_mean
        return dominance(likelihood_ratio(x, p.a, p.mode, trim), likelihood_ratio(z, p.a, p.mode, trim),
                         resolved_gamma(p))


@hookimpl
def register_attacks(register):
    register(RMIAAttack)
