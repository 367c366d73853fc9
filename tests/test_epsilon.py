"""Empirical epsilon lower bounds (REFERENCE §9), checked without training on a mechanism whose epsilon is known.

Randomized response on synthetic canaries is eps-DP with eps exactly known: each
canary is IN with probability 1/2 (a coin per model and canary, as a pool gives), and
the "model" reports the truth with probability e^eps / (1 + e^eps). A valid 95% lower
bound exceeds the true eps in at most 5% of repeats: over 200 seeded repeats, 19 or
more exceedances happen with probability under 1% (Binomial(200, 0.05)).
"""

import math

import numpy as np
import pytest
from scipy.stats import binom

from mibench.engine.epsilon import (audit_epsilon, cp_lower, cp_upper, one_run_epsilon, threshold_epsilon)

REPEATS, ALLOWED = 200, 18
TARGETS = 8


def randomized_response(eps, canaries, seed, targets=TARGETS):
    """Pooled (scores, membership, target) of ``targets`` randomized-response runs on ``canaries`` canaries each."""
    rng = np.random.default_rng(seed)
    member = rng.random((targets, canaries)) < 0.5
    truthful = rng.random((targets, canaries)) < math.exp(eps) / (1 + math.exp(eps))
    said_in = np.where(truthful, member, ~member)
    scores = said_in + 0.01 * rng.random((targets, canaries))  # ties broken at random, independent of membership
    return scores.ravel(), member.ravel(), np.repeat(np.arange(targets), canaries)


def test_allowed_exceedances_are_under_one_percent_for_a_valid_bound():
    assert 1 - binom.cdf(ALLOWED, REPEATS, 0.05) < 0.01


@pytest.mark.parametrize("method", ["one-run", "threshold"])
@pytest.mark.parametrize("eps", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_the_bound_exceeds_the_true_epsilon_in_at_most_5_percent_of_repeats(method, eps):
    bounds = np.array([audit_epsilon(*randomized_response(eps, 300, seed), method=method, seed=seed).eps
                       for seed in range(REPEATS)])
    above = int((bounds > eps).sum())
    assert above <= ALLOWED, f"{method}: the bound exceeded eps = {eps} in {above} of {REPEATS} repeats"
    assert np.isfinite(bounds).all() and (bounds >= 0).all()


@pytest.mark.parametrize("method", ["one-run", "threshold"])
def test_the_bound_grows_toward_the_true_epsilon_with_more_canaries(method):
    eps = 1.0
    # randomized response is pure eps-DP: delta 0 (the one-run method's delta term caps the samples it audits)
    means = [np.mean([audit_epsilon(*randomized_response(eps, n, seed), method=method, delta=0.0, seed=seed).eps
                      for seed in range(10)]) for n in (100, 1000, 10000)]
    assert means[0] < means[1] < means[2] <= eps
    assert means[2] > eps - 0.25  # within a quarter of the truth at 10,000 canaries per target


def test_no_leak_gives_no_epsilon():
    rng = np.random.default_rng(0)
    member = rng.random(8 * 500) < 0.5
    bound = audit_epsilon(rng.random(8 * 500), member, np.repeat(np.arange(8), 500))
    assert bound.eps < 0.3 and bound.targets == 4 and bound.method == "one-run" and bound.delta == 1e-5


def test_clopper_pearson_and_the_formulas_by_hand():
    # 0 of 10: the upper bound solves (1 - p)^10 = alpha; 10 of 10: the lower bound solves p^10 = alpha
    assert float(cp_upper(0, 10, 0.05)) == pytest.approx(1 - 0.05 ** 0.1)
    assert float(cp_lower(10, 10, 0.05)) == pytest.approx(0.05 ** 0.1)
    assert float(cp_lower(0, 10, 0.05)) == 0.0 and float(cp_upper(10, 10, 0.05)) == 1.0
    # TPR 0.5, FPR 0.05, delta 0: log(0.5 / 0.05) = log 10 beats log(0.95 / 0.5)
    assert float(threshold_epsilon(0.5, 0.05, 0.0)) == pytest.approx(math.log(10))
    assert float(threshold_epsilon(0.01, 0.5, 0.0)) == 0.0  # an attack worse than chance shows nothing
    # one run: 90 of 100 guesses right; the bound is the log-odds of the lower CP bound
    p = float(cp_lower(90, 100, 0.05))
    assert float(one_run_epsilon(100, 90, 0.05)) == pytest.approx(math.log(p / (1 - p)))
    assert float(one_run_epsilon(0, 0, 0.05)) == 0.0


def test_one_target_cannot_choose_and_bound_on_separate_data():
    scores, member, _ = randomized_response(1.0, 100, 0, targets=1)
    bound = audit_epsilon(scores, member, np.zeros(len(scores)))
    assert math.isnan(bound.eps) and "one target" in bound.choice
    with pytest.raises(ValueError, match="unknown epsilon method 'exact'"):
        audit_epsilon(scores, member, np.zeros(len(scores)), method="exact")


def test_each_attack_config_of_a_grid_is_bounded_at_alpha_over_their_number(write_grid, registry):
    from mibench.config.resolve import load_grid
    from tests.grids import digits_grid

    text = digits_grid(attacks="[loss, {name: lira, params: {mode: online}, sweep: {signal: [scaled-logit, hinge]}}]",
                       shadow=0, extra="protocol: pool\npool: {models: 6}\n")
    protocol = load_grid(write_grid(text), registry).protocol
    assert protocol.epsilon == ("one-run", 1e-5, pytest.approx(1 - 0.05 / 3))  # three attack configs
