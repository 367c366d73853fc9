"""Online LiRA and online RMIA (REFERENCE §7): hand computations, planted leaks under a model pool,
and online LiRA's gain over offline where the IN references carry information.

The pool here is the protocol's (REFERENCE §7): M models, each evaluation sample IN for
M/2 of them (a seeded permutation per sample); model 0 is the target, the other M - 1
its reference models; the population (1000..1999) trained no model.
"""

import math
from dataclasses import replace
import statistics
from statistics import NormalDist

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
import torch
from pydantic import ValidationError

from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.metrics import attack_metrics
from mibench.sdk import ReferenceNeeds, ReferenceRules
from mibench.sdk.reference_attack import Table
from mibench_plugins.attacks.lira import (
    PER_SAMPLE_VARIANCE_MIN_MODELS,
    LiRAAttack,
    lira_offline_scores,
    lira_online_scores,
    resolved_variance,
)
from mibench_plugins.attacks.rmia import RMIAAttack, likelihood_ratio, marginal, resolved_gamma
from tests.fakes import FakeAccess, context, label_pool, membership

# ------------------------------------------------------------------ online LiRA by hand

# Four samples, six reference models. Columns are samples; IN / OUT per reference:
#   sample 0: IN refs 0, 1, 2; OUT refs 3, 4, 5
#   sample 1: IN refs 0, 3;    OUT refs 1, 2, 4; ref 5 carved it out of its split (neither)
#   sample 2: IN ref 0 only;   OUT refs 1-5 (one IN value: no per-sample IN sigma)
#   sample 3: IN for every ref (no OUT value: never scored)
REFS = np.array([
    [1.0, 3.0, 0.7, 1.0],
    [1.4, 2.0, 0.2, 1.0],
    [2.0, 2.5, 0.4, 1.0],
    [0.1, 0.8, -0.1, 1.0],
    [0.5, 1.2, 0.3, 1.0],
    [-0.3, 9.9, 0.0, 1.0],
])
INSIDE = np.array([
    [True, True, True, True],
    [True, False, False, True],
    [True, False, False, True],
    [False, True, False, True],
    [False, False, False, True],
    [False, False, False, True],
])
OUT = ~INSIDE
OUT[5, 1] = False  # the carve-out
TARGET = np.array([1.6, 2.2, 0.4, 1.0])
TABLE = Table(TARGET, REFS, OUT, INSIDE)


def side(i, mask):
    return [float(REFS[j, i]) for j in range(len(REFS)) if mask[j, i]]


def log_ratio_by_hand(t, ins, outs, s_in=None, s_out=None):
    """The online score with predictive Gaussians: unbiased sigma (or the given pooled one) times sqrt(1 + 1/n)."""
    s_in = statistics.stdev(ins) if s_in is None else s_in
    s_out = statistics.stdev(outs) if s_out is None else s_out
    s_in, s_out = s_in * math.sqrt(1 + 1 / len(ins)), s_out * math.sqrt(1 + 1 / len(outs))
    return (math.log(NormalDist(statistics.fmean(ins), s_in).pdf(t))
            - math.log(NormalDist(statistics.fmean(outs), s_out).pdf(t)))


def pooled_sigma(groups):
    """One sigma from several groups: all squared deviations from each group's mean over sum(n - 1)."""
    squares = sum(sum((v - statistics.fmean(g)) ** 2 for v in g) for g in groups)
    return math.sqrt(squares / sum(len(g) - 1 for g in groups))


def test_online_lira_per_sample_by_hand():
    got = lira_online_scores(TABLE, fix_variance=False)
    for i in (0, 1):
        assert got[i] == pytest.approx(log_ratio_by_hand(TARGET[i], side(i, INSIDE), side(i, OUT)), rel=1e-12)
    # sample 1's OUT references: mean 1.9, unbiased sigma 0.656 (9.9 of the carve-out is left out)
    assert statistics.fmean(side(1, OUT)) == pytest.approx(1.9)
    assert statistics.stdev(side(1, OUT)) == pytest.approx(0.6557, abs=5e-4)
    assert np.isnan(got[2]) and np.isnan(got[3])  # one IN reference; no OUT reference


def test_online_lira_fixed_variance_by_hand():
    # One s_in pooled over the IN values of samples 0, 1 and 3 (2 has one IN value; 3 has no
    # OUT one but six IN ones: they count); one s_out over the OUT values of samples 0, 1, 2.
    s_in = pooled_sigma([side(i, INSIDE) for i in (0, 1, 3)])
    s_out = pooled_sigma([side(i, OUT) for i in (0, 1, 2)])
    got = lira_online_scores(TABLE, fix_variance=True)
    for i in (0, 1, 2):  # one IN and one OUT reference suffice
        want = log_ratio_by_hand(TARGET[i], side(i, INSIDE), side(i, OUT), s_in, s_out)
        assert got[i] == pytest.approx(want, rel=1e-12)
    assert np.isnan(got[3])


def test_offline_lira_ignores_the_in_references():
    without = Table(TARGET, REFS, OUT)
    np.testing.assert_array_equal(lira_offline_scores(TABLE), lira_offline_scores(without))
    np.testing.assert_array_equal(lira_offline_scores(TABLE, True), lira_offline_scores(without, True))


@pytest.mark.parametrize("fix_variance,mode,models,resolved", [
    ("auto", "online", PER_SAMPLE_VARIANCE_MIN_MODELS - 1, "per-side"),
    ("auto", "online", PER_SAMPLE_VARIANCE_MIN_MODELS, "per-sample"),
    ("auto", "offline", 4, "per-sample"),  # offline auto is per-sample, whatever the count (earlier runs' numbers)
    ("auto", "offline", 1000, "per-sample"),
    ("per-side", "offline", 1000, "per-side"),
    ("per-sample", "online", 4, "per-sample"),
    ("shared", "online", 4, "shared"),
])
def test_fix_variance_auto(fix_variance, mode, models, resolved):
    assert PER_SAMPLE_VARIANCE_MIN_MODELS == 64
    assert resolved_variance(fix_variance, mode, models) == resolved


@pytest.mark.parametrize("given,means", [(None, "auto"), (True, "per-side"), (False, "per-sample")])
def test_fix_variance_of_earlier_grids_keeps_its_meaning(given, means):
    assert LiRAAttack.Params(fix_variance=given).fix_variance == means


def test_online_lira_score_follows_the_resolved_variance():
    ctx = SimpleNamespace(references=[None] * len(TABLE.refs), pool_models=0)  # what compare reads of the run
    auto = LiRAAttack(LiRAAttack.Params(mode="online"))  # six references: below 64, fixed variance
    np.testing.assert_array_equal(auto.compare(TABLE, TABLE, ctx), lira_online_scores(TABLE, True))
    per_sample = LiRAAttack(LiRAAttack.Params(mode="online", fix_variance=False))
    np.testing.assert_array_equal(per_sample.compare(TABLE, TABLE, ctx), lira_online_scores(TABLE, False))
    offline = LiRAAttack()
    np.testing.assert_array_equal(offline.compare(TABLE, TABLE, ctx), lira_offline_scores(TABLE, False))


# ------------------------------------------------------------------ online RMIA by hand


def test_online_rmia_marginal_by_hand():
    # Pr(x) = mean over every IN and OUT reference; offline uses the OUT ones and a.
    pr = marginal(TABLE, a=0.3, mode="online")
    assert pr[0] == pytest.approx(statistics.fmean([1.0, 1.4, 2.0, 0.1, 0.5, -0.3]))
    assert pr[1] == pytest.approx(statistics.fmean([3.0, 2.0, 2.5, 0.8, 1.2]))  # not the carve-out's 9.9
    offline = marginal(TABLE, a=0.3, mode="offline")
    assert offline[0] == pytest.approx(0.65 * statistics.fmean([0.1, 0.5, -0.3]) + 0.35)
    assert np.isnan(offline[3]) and pr[3] == pytest.approx(1.0)


RMIA_X = Table(
    target=np.array([0.9, 0.3]),
    refs=np.array([[0.8, 0.2], [0.6, 0.4], [0.4, 0.1], [0.5, 0.9]]),
    out=np.array([[False, True], [True, False], [False, True], [True, False]]),
    inside=np.array([[True, False], [False, True], [True, False], [False, False]]),  # ref 3 carved out sample 1
)
RMIA_Z = Table(  # population samples: no reference trained on them
    target=np.array([0.5, 0.2, 0.7]),
    refs=np.array([[0.4, 0.3, 0.6], [0.6, 0.1, 0.5], [0.5, 0.2, 0.9], [0.3, 0.3, 0.4]]),
    out=np.ones((4, 3), bool),
)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_online_rmia_scores_by_hand(gamma):
    pr_x = [statistics.fmean([0.8, 0.6, 0.4, 0.5]), statistics.fmean([0.2, 0.4, 0.1])]
    pr_z = [statistics.fmean([0.4, 0.6, 0.5, 0.3]), statistics.fmean([0.3, 0.1, 0.2, 0.3]),
            statistics.fmean([0.6, 0.5, 0.9, 0.4])]
    lr_x = [t / p for t, p in zip([0.9, 0.3], pr_x)]
    lr_z = [t / p for t, p in zip([0.5, 0.2, 0.7], pr_z)]
    assert likelihood_ratio(RMIA_X, 0.3, "online").tolist() == pytest.approx(lr_x)
    assert likelihood_ratio(RMIA_Z, 0.3, "online").tolist() == pytest.approx(lr_z)
    want = [sum(lx / lz > gamma for lz in lr_z) / 3 for lx in lr_x]
    got = RMIAAttack(RMIAAttack.Params(mode="online", gamma=gamma)).compare(RMIA_X, RMIA_Z, None)
    assert got.tolist() == pytest.approx(want)


def test_online_rmia_ignores_a_and_offline_ignores_the_in_references():
    online = [RMIAAttack(RMIAAttack.Params(mode="online", a=a)).compare(RMIA_X, RMIA_Z, None) for a in (0.0, 0.3, 1.0)]
    np.testing.assert_array_equal(online[0], online[1])
    np.testing.assert_array_equal(online[0], online[2])
    without = Table(RMIA_X.target, RMIA_X.refs, RMIA_X.out)
    np.testing.assert_array_equal(likelihood_ratio(RMIA_X, 0.3), likelihood_ratio(without, 0.3))


# ------------------------------------------------------------------ needs and params


def test_online_modes_need_online_reference_models_on_each_side():
    # count: references per side; LiRA fits a variance (2), RMIA a mean (1)
    assert LiRAAttack.needs(LiRAAttack.Params(mode="online")) == ReferenceNeeds(count=2, mode="online")
    assert RMIAAttack.needs(RMIAAttack.Params(mode="online")) == ReferenceNeeds(count=1, mode="online")
    assert LiRAAttack.needs(LiRAAttack.Params()) == ReferenceNeeds(count=2)
    assert RMIAAttack.needs(RMIAAttack.Params()) == ReferenceNeeds()


@pytest.mark.parametrize("attack", [LiRAAttack, RMIAAttack])
def test_an_unknown_mode_is_refused(attack):
    with pytest.raises(ValidationError, match=r"(?s)mode.*'offline' or 'online'"):
        attack.Params(mode="sideways")


def test_an_unknown_mode_is_refused_in_a_grid(write_grid, registry):
    path = write_grid("name: x\ndatasets: [digits]\narchitectures: [mlp]\ndefenses: [ce]\n"
                      "attacks:\n  - name: lira\n    params: {mode: sideways}\n")
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.params\.mode: Input should be 'offline' or 'online'"):
        load_grid(path, registry)


# ------------------------------------------------------------------ planted leaks in a model pool

N_EVAL, C = 1000, 4
N = 2 * N_EVAL  # 1000..1999: the population
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, C, N)
DIFFICULTY = RNG.normal(2.0, 1.0, N)


def pool_inside(models, seed):
    """models x N: each evaluation sample IN for half the models (a seeded permutation per sample)."""
    rng = np.random.default_rng(seed)
    inside = np.zeros((models, N), bool)
    for i in range(N_EVAL):
        inside[rng.permutation(models)[: models // 2], i] = True
    return inside


def pool_context(shift, sd_in, sd_out, models=8, seed=1):
    """Model m's margin: difficulty + noise (sd_in where IN, sd_out where OUT) + shift where IN.

    Model 0 is the target, the others its reference models.
    """
    pool = label_pool(LABELS, C)
    inside = pool_inside(models, seed)
    views = []
    for m in range(models):
        rng = np.random.default_rng(100 + m)
        margin = DIFFICULTY + np.where(inside[m], rng.normal(0, sd_in, N) + shift, rng.normal(0, sd_out, N))

        def logits(indices, margin=margin):
            out = torch.zeros(len(indices), C, dtype=torch.float64)
            out[torch.arange(len(indices)), torch.as_tensor(LABELS[indices])] = torch.as_tensor(margin[indices])
            return out

        members = np.flatnonzero(inside[m, :N_EVAL])
        views.append(FakeAccess(pool, members, np.setdiff1d(np.arange(N_EVAL), members), logits))
    return replace(context(views[0], views[1:], population=np.arange(N_EVAL, N), seed=3), pool_models=models,
                   reference_rules=ReferenceRules(per_side=models // 2 - 1))


def evaluate(attack, ctx):
    out = attack.run(ctx)
    assert len(out.scores) == N_EVAL
    return attack_metrics(membership(ctx, ctx.target), out.scores, LABELS[ctx.eval_indices], out.thresholds)


# name: (attack, pool size). Per-sample online LiRA gets 32 models: with 7 references
# (3 or 4 per side) it is biased (test_per_sample_online_lira_is_biased_in_a_small_pool).
ONLINE = {
    "lira-online": (LiRAAttack(LiRAAttack.Params(mode="online")), 8),
    "lira-online-per-sample": (LiRAAttack(LiRAAttack.Params(mode="online", fix_variance=False)), 32),
    "rmia-online": (RMIAAttack(RMIAAttack.Params(mode="online")), 8),
}


@pytest.mark.parametrize("name", ONLINE)
def test_online_attacks_find_a_planted_leak(name):
    attack, models = ONLINE[name]
    metrics = evaluate(attack, pool_context(shift=4.0, sd_in=0.3, sd_out=0.3, models=models))
    assert metrics.auc > 0.95
    assert metrics.balanced_accuracy > 0.85


@pytest.mark.parametrize("name", ONLINE)
def test_online_attacks_call_outputs_that_ignore_membership_a_coin_flip(name):
    attack, models = ONLINE[name]
    metrics = evaluate(attack, pool_context(shift=0.0, sd_in=0.3, sd_out=0.3, models=models))
    assert metrics.auc == pytest.approx(0.5, abs=0.05)
    assert metrics.balanced_accuracy == pytest.approx(0.5, abs=0.05)


def test_online_rmia_needs_gamma_1():
    # Online, half the references in Pr(x) trained on x, so LR(x) stays near or below 2 and
    # a member rarely beats a population sample by gamma = 2: auto gamma is 1 online.
    ctx = pool_context(shift=4.0, sd_in=0.3, sd_out=0.3)
    gamma_2 = evaluate(RMIAAttack(RMIAAttack.Params(mode="online", gamma=2.0)), ctx)
    auto = evaluate(RMIAAttack(RMIAAttack.Params(mode="online")), ctx)
    assert auto.auc > 0.95 > 0.8 > gamma_2.auc
    assert resolved_gamma(RMIAAttack.Params(mode="online")) == 1.0
    assert resolved_gamma(RMIAAttack.Params()) == 2.0  # offline: what rmia always used


def test_reference_counts_would_tell_membership_and_balanced_tables_hide_them():
    # Each sample is IN for exactly 4 of the 8 models: a member of the target has 3 IN
    # references, a non-member 4. Counting them is a perfect attack that never looks at a
    # model; fitted from those unequal counts, per-sample online LiRA scored members lower
    # where nothing leaks (AUC 0.42). The base class balances the sides, so it is a coin.
    ctx = pool_context(shift=0.0, sd_in=0.3, sd_out=0.3)
    member = membership(ctx, ctx.target)
    ins = np.stack([np.isin(ctx.eval_indices, s.members) for s in ctx.references])
    outs = ~ins
    assert roc_auc_score(member, -ins.sum(0)) == 1.0
    balanced = Table(np.zeros(N_EVAL), np.zeros(ins.shape), outs, ins).balanced(3)
    assert (balanced.is_in.sum(0) == 3).all() and (balanced.out.sum(0) == 3).all()
    assert (balanced.is_in <= ins).all() and (balanced.out <= outs).all()
    per_sample = evaluate(LiRAAttack(LiRAAttack.Params(mode="online", fix_variance=False)), ctx)
    assert per_sample.auc == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize("models", [7, 8, 16])
def test_balanced_tables_give_every_sample_the_same_counts(models):
    # A target's M - 1 references: a member has floor(M/2) - 1 IN ones, a non-member floor(M/2).
    # Odd M (7: 2 IN + 4 OUT against 3 + 3) or a reference that carved a sample out of its
    # split must not leave members with other counts than non-members.
    inside = pool_inside(models, seed=2)[:, :N_EVAL]
    target, refs = inside[0], inside[1:]
    out = ~refs
    carved = np.random.default_rng(4).random(refs.shape) < 0.2
    for neither in (np.zeros_like(refs), carved & refs):  # carved: neither IN nor OUT for the attack
        table = Table(np.zeros(N_EVAL), np.zeros(refs.shape), out, refs & ~neither).balanced(models // 2 - 1)
        assert (table.is_in.sum(0) == models // 2 - 1).all()
        assert (table.out.sum(0) == models // 2 - 1).all()
        assert not (table.is_in & table.out).any() and (table.out <= out).all()
        assert target.any() and (~target).any()


def test_balanced_tables_keep_the_side_references_with_the_smallest_seeded_keys():
    # The rule, column by column in plain Python: each sample keeps, on each side, the
    # per_side references of that side whose keys (one seeded uniform draw per table
    # cell) are smallest; population columns (no IN side) keep every OUT reference.
    rng = np.random.default_rng(8)
    k, n, per_side = 9, 40, 3
    inside = rng.random((k, n)) < 0.5
    inside[:, :5] = False  # population samples
    out = ~inside & (rng.random((k, n)) > 0.1)  # and some carved out (neither)
    table = Table(np.zeros(n), np.zeros((k, n)), out, inside).balanced(per_side, seed=5)
    keys = np.random.default_rng(5).random((k, n))
    for i in range(n):
        split = [j for j in range(k) if not out[j, i]]
        side_out = [j for j in range(k) if out[j, i]]
        kept_in = sorted(split, key=lambda j: keys[j, i])[:per_side]
        kept_out = side_out if not split else sorted(side_out, key=lambda j: keys[j, i])[:per_side]
        assert np.flatnonzero(table.is_in[:, i]).tolist() == sorted(kept_in), i
        assert np.flatnonzero(table.out[:, i]).tolist() == sorted(kept_out), i


def test_online_lira_beats_offline_where_in_references_carry_information():
    # Training on a sample shifts its statistic by a sample-specific amount (uniform on
    # [0, 4]) and steadies it (sd 0.3 IN, 1 OUT). Only the IN references show either;
    # offline LiRA sees the OUT Gaussian alone. Both sides use fixed variance (as online's
    # auto does with 7 references) and per-sample offline is shown too.
    shift = np.random.default_rng(11).uniform(0.0, 4.0, N)
    ctx = pool_context(shift=shift, sd_in=0.3, sd_out=1.0)
    online = evaluate(LiRAAttack(LiRAAttack.Params(mode="online")), ctx)
    offline_fixed = evaluate(LiRAAttack(LiRAAttack.Params(fix_variance=True)), ctx)
    offline = evaluate(LiRAAttack(), ctx)
    assert online.auc > max(offline_fixed.auc, offline.auc) + 0.05
    assert online.balanced_accuracy > max(offline_fixed.balanced_accuracy, offline.balanced_accuracy) + 0.05
    assert online.tpr_at_1pct_fpr > offline_fixed.tpr_at_1pct_fpr


def test_auto_variance_switches_at_64_reference_models():
    # 65 models on 40 evaluation samples: the target's 64 references get per-sample variances,
    # 63 of them the fixed variance (the rule reads the run's reference count, not the table's).
    small_labels = LABELS[:80]
    pool = label_pool(small_labels, C)
    rng = np.random.default_rng(5)
    models = []
    for m in range(65):
        member = np.flatnonzero(rng.random(40) < 0.5)
        margin = DIFFICULTY[:80] + rng.normal(0, 0.5, 80) + np.isin(np.arange(80), member)

        def logits(indices, margin=margin):
            out = torch.zeros(len(indices), C, dtype=torch.float64)
            out[torch.arange(len(indices)), torch.as_tensor(small_labels[indices])] = torch.as_tensor(margin[indices])
            return out

        models.append(FakeAccess(pool, member, np.setdiff1d(np.arange(40), member), logits))

    def scores(shadows, fix_variance):
        ctx = context(models[0], shadows, population=np.arange(40, 80))
        return LiRAAttack(LiRAAttack.Params(mode="online", fix_variance=fix_variance)).run(ctx).scores

    np.testing.assert_array_equal(scores(models[1:], None), scores(models[1:], False))
    np.testing.assert_array_equal(scores(models[1:64], None), scores(models[1:64], True))
    assert not np.array_equal(scores(models[1:], True), scores(models[1:], False))
