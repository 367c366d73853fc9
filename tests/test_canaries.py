"""Canary audits (REFERENCE §8): the canary designs, the audit's splits, planted leaks on canaries, signals.

No training here: canaries are crafted on small pools, the splits are index sets, and
the planted-leak "models" are formulas (each sample has a difficulty shared by every
model, each model its own noise, a leaking model a boost on the canaries it trained on).
The end-to-end audit is tests/test_canary_audit.py.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mibench.engine.metrics import attack_metrics
from mibench.engine.protocols.canary_splits import CanarySplits
from mibench.engine.protocols.splits import Role
from mibench.sdk import CanaryContext, Pool, Table, hinge_margin, random_other_labels
from mibench_plugins.attacks.lira import LiRAAttack
from mibench_plugins.attacks.rmia import RMIAAttack
from mibench_plugins.attacks.signals import likelihood_signal, membership_signal
from mibench_plugins.canaries.designs import BlankCanary, DuplicatedCanary, MislabeledCanary, NoiseCanary
from tests.fakes import FakeAccess, context, label_pool

# ------------------------------------------------------------------------------ designs


def image_pool(n=200, classes=10, dtype=torch.uint8):
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.integers(0, 256, (n, 1, 4, 4))).to(dtype)
    return Pool(images, torch.as_tensor(rng.integers(0, classes, n)), classes, (0.5,), (0.25,))


def craft(design, pool, count=50, seed=7, sources=True):
    chosen = np.random.default_rng(1).choice(len(pool), count, replace=False) if sources else np.zeros(0, np.int64)
    return chosen, design.craft(CanaryContext(pool, chosen, count, np.random.default_rng(seed)))


def test_mislabeled_canaries_keep_the_image_and_take_another_class_seeded():
    pool = image_pool()
    sources, made = craft(MislabeledCanary(), pool)
    assert torch.equal(made.inputs, pool.inputs[torch.as_tensor(sources)])
    true = pool.labels[torch.as_tensor(sources)]
    assert (made.labels != true).all() and made.labels.min() >= 0 and made.labels.max() < 10
    assert len(set(((made.labels - true) % 10).tolist())) > 3  # a random other class, not a fixed shift
    _, again = craft(MislabeledCanary(), pool)
    _, other = craft(MislabeledCanary(), pool, seed=8)
    assert torch.equal(made.labels, again.labels) and not torch.equal(made.labels, other.labels)


def test_random_other_labels_is_uniform_over_the_other_classes():
    labels = random_other_labels(np.zeros(9000, np.int64), 4, np.random.default_rng(0))
    counts = np.bincount(labels, minlength=4)
    assert counts[0] == 0 and all(abs(c - 3000) < 200 for c in counts[1:])
    with pytest.raises(ValueError, match="at least two classes"):
        random_other_labels(np.zeros(3, np.int64), 1, np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_noise_canaries_are_seeded_uniform_images_on_the_pools_scale(dtype):
    pool = image_pool(dtype=dtype)
    design = NoiseCanary()
    assert not design.uses_sources()
    _, made = craft(design, pool, count=400, sources=False)
    assert made.inputs.shape == (400, 1, 4, 4) and made.inputs.dtype == dtype
    values = made.inputs.double() / pool.scale
    assert values.min() >= 0 and values.max() <= 1 and abs(float(values.mean()) - 0.5) < 0.02
    assert len(made.labels.unique()) == 10
    _, again = craft(design, pool, count=400, sources=False)
    assert torch.equal(made.inputs, again.inputs) and torch.equal(made.labels, again.labels)


def test_blank_canaries_are_one_constant_image():
    pool = image_pool()
    _, made = craft(BlankCanary(BlankCanary.Params(value=0.5)), pool, count=30, sources=False)
    assert (made.inputs == 128).all()  # 0.5 x 255, rounded
    _, black = craft(BlankCanary(), pool, count=30, sources=False)
    assert (black.inputs == 0).all()


def test_duplicated_canaries_are_mislabeled_and_repeat():
    design = DuplicatedCanary(DuplicatedCanary.Params(copies=3))
    assert design.copies() == 3 and design.uses_sources()
    pool = image_pool()
    sources, made = craft(design, pool)
    assert (made.labels != pool.labels[torch.as_tensor(sources)]).all()


# ------------------------------------------------------------------------------- splits


def test_canaries_join_d_balanced_and_stay_out_of_the_population():
    pool_size, count, models = 1000, 40, 8
    splits = CanarySplits.build_canaries(pool_size, 3, models, 0.5, count, True, 1, "half")
    rows = np.arange(pool_size, pool_size + count)
    assert np.array_equal(splits.canary_rows, rows)
    assert np.isin(rows, splits.samples).all() and len(splits.samples) == 500  # 460 clean + 40 canaries
    assert not np.isin(splits.sources, splits.samples).any()  # a canary's source leaves D...
    assert not np.isin(splits.sources, splits.population).any()  # ...and the population
    assert not np.isin(rows, splits.population).any()
    assert (splits.inside.sum(0) == models // 2).all()  # every sample, canaries too, IN for exactly M / 2
    for m in range(models):
        split = splits.split(Role("pool", m))
        assert split.scored is None and split.test is None and len(split.copies) == 0


def test_splits_of_a_canary_audit_are_seeded():
    a = CanarySplits.build_canaries(1000, 3, 8, 0.5, 40, True, 1, "half")
    b = CanarySplits.build_canaries(1000, 3, 8, 0.5, 40, True, 1, "half")
    c = CanarySplits.build_canaries(1000, 4, 8, 0.5, 40, True, 1, "half")
    assert np.array_equal(a.sources, b.sources) and np.array_equal(a.inside, b.inside)
    assert not np.array_equal(a.sources, c.sources)


def test_leave_one_out_base_varies_the_canaries_only():
    splits = CanarySplits.build_canaries(1000, 3, 6, 0.5, 40, False, 1, "always")
    clean = splits.samples[splits.samples < 1000]
    assert len(clean) == 500 and len(splits.sources) == 0  # synthetic canaries take no sample of D
    for m in range(6):
        split = splits.split(Role("pool", m))
        assert np.isin(clean, split.members).all()  # every clean sample IN for every model
        assert np.array_equal(split.scored, splits.canary_rows)  # scored on the canaries alone
        assert np.array_equal(split.test, splits.population)  # the test accuracy on data no model saw
        assert np.isin(split.nonmembers, splits.canary_rows).all()
    assert (splits.inside[:, -40:].sum(0) == 3).all()


def test_repeats_of_a_duplicated_canary_train_with_it():
    splits = CanarySplits.build_canaries(1000, 3, 4, 0.5, 10, True, 3, "half")
    assert splits.repeats.shape == (10, 2) and splits.rows == 1000 + 30
    assert np.array_equal(np.sort(splits.canaries), np.arange(1000, 1030))
    for m in range(4):
        split = splits.split(Role("pool", m))
        members = np.isin(splits.canary_rows, split.members)
        assert np.array_equal(np.sort(split.copies), np.sort(splits.repeats[members].ravel()))
        assert np.isin(split.copies, split.training).all() and not np.isin(split.copies, split.members).any()


def test_too_many_canaries_for_d_is_an_error():
    with pytest.raises(ValueError, match="at most half of D"):
        CanarySplits.build_canaries(100, 0, 4, 0.5, 26, True, 1, "half")


# ------------------------------------------------------------------------- planted leaks

POOL, COUNT, C, MODELS = 1200, 200, 4, 8


def canary_pool_context(boost, models=MODELS, target=0):
    """Model m's margin: difficulty + noise, plus ``boost`` on the canaries it trained on; model ``target`` attacked."""
    splits = CanarySplits.build_canaries(POOL, 1, models, 0.5, COUNT, True, 1, "half")
    rows = splits.rows
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, rows)
    difficulty = rng.normal(2.0, 1.0, rows)
    pool = label_pool(labels, C)
    canary = np.isin(np.arange(rows), splits.canary_rows)
    views = []
    for m in range(models):
        split = splits.split(Role("pool", m))
        trained = np.isin(np.arange(rows), split.members)
        margin = difficulty + np.random.default_rng(100 + m).normal(0, 0.3, rows) + boost * (trained & canary)

        def logits(indices, margin=margin):
            out = torch.zeros(len(indices), C, dtype=torch.float64)
            out[torch.arange(len(indices)), torch.as_tensor(labels[indices])] = torch.as_tensor(margin[indices])
            return out

        views.append(FakeAccess(pool, split.members, split.nonmembers, logits))
    order = [target] + [m for m in range(models) if m != target]
    ctx = context(views[order[0]], [views[m] for m in order[1:]], population=splits.population, seed=3)
    ctx = replace(ctx, **{k: v for k, v in splits.attack_view().items() if k != "population"})
    return ctx, splits


def population_metrics(attack, ctx, splits):
    out = attack.run(ctx)
    member = np.isin(ctx.eval_indices, ctx.target.members)
    canary = np.isin(ctx.eval_indices, splits.canary_rows)
    scores, labels = np.asarray(out.scores), ctx.target.labels(ctx.eval_indices).numpy()
    return {name: (attack_metrics(member[keep], scores[keep], labels[keep], None), member[keep], scores[keep])
            for name, keep in (("all", np.ones_like(canary)), ("clean", ~canary), ("canary", canary))}


ATTACKS = {
    "lira-online": LiRAAttack(LiRAAttack.Params(mode="online")),
    "lira-online-hinge": LiRAAttack(LiRAAttack.Params(mode="online", signal="hinge")),
    "rmia-online": RMIAAttack(RMIAAttack.Params(mode="online")),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_a_leak_planted_on_canaries_is_found_there_and_nowhere_else(name):
    ctx, splits = canary_pool_context(boost=4.0)
    metrics = population_metrics(ATTACKS[name], ctx, splits)
    assert metrics["canary"][0].auc > 0.95
    assert metrics["clean"][0].auc == pytest.approx(0.5, abs=0.06)
    for population, (m, member, scores) in metrics.items():  # the three populations are sklearn's AUC of the subset
        assert m.auc == pytest.approx(roc_auc_score(member, scores), abs=1e-12), population


@pytest.mark.parametrize("name", ATTACKS)
def test_without_a_leak_canaries_are_a_coin_flip(name):
    aucs = [population_metrics(ATTACKS[name], *canary_pool_context(boost=0.0, target=t))["canary"][0].auc
            for t in range(4)]
    assert np.mean(aucs) == pytest.approx(0.5, abs=0.05)


def test_reference_tables_stay_balanced_for_canaries():
    # Each canary is IN for exactly M / 2 models: the target's membership fixes how many of its
    # references are IN (one fewer for a member), a perfect attack on counts alone; the
    # protocol's rules give every canary the same number per side, as for any sample of D.
    ctx, splits = canary_pool_context(boost=0.0)
    canary = np.isin(ctx.eval_indices, splits.canary_rows)
    member = np.isin(ctx.eval_indices, ctx.target.members)[canary]
    ins = np.stack([np.isin(ctx.eval_indices, r.members) for r in ctx.references])[:, canary]
    assert roc_auc_score(member, -ins.sum(0)) == 1.0
    per_side = ctx.reference_rules.per_side
    assert per_side == MODELS // 2 - 1
    balanced = Table(np.zeros(canary.sum()), np.zeros(ins.shape), ~ins, ins).balanced(per_side)
    assert (balanced.is_in.sum(0) == per_side).all() and (balanced.out.sum(0) == per_side).all()


# --------------------------------------------------------------------------------- signals

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 2, 1])


def test_hinge_signal_by_hand():
    # row 0: 2 - max(0.5, -1) = 1.5; row 1: 1 - max(0, 3) = -2; row 2: 1 - 1 = 0
    assert hinge_margin(LOGITS, LABELS).tolist() == [1.5, -2.0, 0.0]
    assert membership_signal("hinge", LOGITS, LABELS).tolist() == [1.5, -2.0, 0.0]


def test_loss_confidence_and_scaled_logit_signals_by_hand():
    p = np.exp(LOGITS.numpy()) / np.exp(LOGITS.numpy()).sum(1, keepdims=True)
    p_y = p[np.arange(3), LABELS.numpy()]
    np.testing.assert_allclose(membership_signal("confidence", LOGITS, LABELS), p_y, rtol=1e-12)
    np.testing.assert_allclose(membership_signal("loss", LOGITS, LABELS), np.log(p_y), rtol=1e-12)
    np.testing.assert_allclose(membership_signal("scaled-logit", LOGITS, LABELS), np.log(p_y / (1 - p_y)), rtol=1e-12)
    # RMIA's Pr(x | theta): p_y itself, the odds, exp of the margin
    np.testing.assert_allclose(likelihood_signal("confidence", LOGITS, LABELS), p_y, rtol=1e-12)
    np.testing.assert_allclose(likelihood_signal("loss", LOGITS, LABELS), p_y, rtol=1e-12)
    np.testing.assert_allclose(likelihood_signal("scaled-logit", LOGITS, LABELS), p_y / (1 - p_y), rtol=1e-12)
    np.testing.assert_allclose(likelihood_signal("hinge", LOGITS, LABELS), np.exp([1.5, -2.0, 0.0]), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown signal 'margin'"):
        membership_signal("margin", LOGITS, LABELS)


def test_lira_uses_its_signal():
    attack = LiRAAttack(LiRAAttack.Params(signal="hinge"))
    assert attack.signal(LOGITS, LABELS).tolist() == [1.5, -2.0, 0.0]
    with pytest.raises(Exception, match="signal"):
        LiRAAttack.Params(signal="margin")
