"""Query views (mirror, reflect/nearest/zero-filled shifts) and LiRA's and RMIA's authors' forms, by hand and on
planted leaks."""

import math

import scipy.stats

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from mibench.engine.metrics import attack_metrics
from mibench.sdk import ReferenceRules
from mibench.sdk.dataset import Pool
from mibench.sdk.reference_attack import Table
from mibench_plugins.attacks.lira import LiRAAttack, lira_offline_scores, lira_online_scores
from mibench_plugins.attacks.rmia import RMIAAttack, marginal, trimmed_mean, voted_dominance
from mibench_plugins.attacks.signals import likelihood_signal
from mibench_plugins.attacks.views import mirror_views, shifted, square_views, view
from tests.fakes import FakeAccess, context, membership

IMAGE = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]).view(1, 1, 3, 3)


@pytest.mark.parametrize("fill,want", [
    # moved one pixel right: the new first column is filled
    ("zero", [[0, 1, 2], [0, 4, 5], [0, 7, 8]]),
    ("nearest", [[1, 1, 2], [4, 4, 5], [7, 7, 8]]),  # the edge pixel repeated
    ("reflect", [[2, 1, 2], [5, 4, 5], [8, 7, 8]]),  # mirrored from inside, the edge not repeated
])
def test_a_shift_right_fills_the_border_as_asked(fill, want):
    assert shifted(IMAGE, 1, 0, fill).view(3, 3).tolist() == want


def test_a_shift_down_and_left_and_a_mirror_by_hand():
    assert shifted(IMAGE, -1, 1, "nearest").view(3, 3).tolist() == [[2, 3, 3], [2, 3, 3], [5, 6, 6]]
    assert view(IMAGE, True, 0, 0).view(3, 3).tolist() == [[3, 2, 1], [6, 5, 4], [9, 8, 7]]
    assert view(IMAGE, True, 1, 0, "reflect").view(3, 3).tolist() == [[2, 3, 2], [5, 6, 5], [8, 9, 8]]
    assert shifted(IMAGE, 0, 0, "reflect") is IMAGE
    with pytest.raises(ValueError, match="reflect-filled shift of 3 pixels"):
        shifted(IMAGE, 3, 0, "reflect")


def test_view_sets():
    assert mirror_views() == [(False, 0, 0), (True, 0, 0)]
    views = square_views(1)
    assert len(views) == 18 and len(set(views)) == 18 and (False, 0, 0) in views and (True, 1, -1) in views
    assert len(square_views(2, mirror=False)) == 25


# ------------------------------------------------------------------ scores over views, by hand

def normal_logpdf(t, mean, std):
    return -0.5 * ((t - mean) / std) ** 2 - math.log(std)


def test_score_mean_fits_one_gaussian_per_view_and_averages_the_scores():
    # One sample, two views; IN references 0-2, OUT 3-5. Per view, per-sample predictive fits.
    refs = np.array([[[3.0, 1.0]], [[4.0, 2.0]], [[5.0, 0.0]], [[0.0, -1.0]], [[1.0, 0.0]], [[-1.0, 1.0]]])
    inside = np.array([[True], [True], [True], [False], [False], [False]])
    table = Table(np.array([[3.5, 0.5]]), refs, ~inside, inside)

    def by_hand(q):
        vin, vout = refs[:3, 0, q].tolist(), refs[3:, 0, q].tolist()
        m_in, m_out = sum(vin) / 3, sum(vout) / 3
        s_in = math.sqrt(sum((v - m_in) ** 2 for v in vin) / 2 * (1 + 1 / 3))
        s_out = math.sqrt(sum((v - m_out) ** 2 for v in vout) / 2 * (1 + 1 / 3))
        t = table.target[0, q]
        return normal_logpdf(t, m_in, s_in) - normal_logpdf(t, m_out, s_out)

    got = lira_online_scores(table, "per-sample")
    assert got.shape == (1,)
    assert got[0] == pytest.approx((by_hand(0) + by_hand(1)) / 2, rel=1e-12)
    # Each view on its own gives that view's score.
    one = Table(table.target[:, 0], refs[:, :, 0], ~inside, inside)
    assert lira_online_scores(one, "per-sample")[0] == pytest.approx(by_hand(0), rel=1e-12)
    # Offline: the one-sided log p-values of the OUT Gaussians, averaged over views (ML fits).
    offline = lira_offline_scores(table, "per-sample")[0]
    want = []
    for q in range(2):
        vout = refs[3:, 0, q]
        z = (table.target[0, q] - vout.mean()) / vout.std()
        want.append(-math.log(0.5 * math.erfc(z / math.sqrt(2))))
    assert offline == pytest.approx(sum(want) / 2, rel=1e-12)


def test_shared_variance_is_one_sigma_for_both_sides_and_the_score_is_linear_in_the_signal():
    # Two samples; IN sigma pooled over both (unbiased), used for the OUT side as well.
    refs = np.array([[2.0, 5.0], [4.0, 7.0], [0.0, 1.0], [1.0, 4.0]])
    inside = np.array([[True, True], [True, True], [False, False], [False, False]])
    target = np.array([3.0, 2.0])
    table = Table(target, refs, ~inside, inside)
    sigma = math.sqrt((2 + 2) / 2)  # squares about the IN means (3, 6): 1 + 1 and 1 + 1, over (2 - 1) + (2 - 1)
    want = [normal_logpdf(t, m_in, sigma) - normal_logpdf(t, m_out, sigma)
            for t, m_in, m_out in zip(target, (3.0, 6.0), (0.5, 2.5))]
    assert lira_online_scores(table, "shared").tolist() == pytest.approx(want, rel=1e-12)
    # (mu_in - mu_out) * (t - (mu_in + mu_out) / 2) / sigma^2: linear in t, sigma only scales.
    assert want[0] == pytest.approx(2.5 * (3.0 - 1.75) / 2, rel=1e-12)


# ------------------------------------------------------------------ params

def test_the_authors_preset_and_earlier_forms():
    authors = LiRAAttack.Params(preset="authors", mode="online")
    assert (authors.augmentations, authors.combine, authors.fix_variance) == ("mirror", "score-mean", "shared")
    assert LiRAAttack.Params(preset="authors", fix_variance="per-side").fix_variance == "per-side"  # given wins
    flip = LiRAAttack.Params(flip=True)
    assert (flip.augmentations, flip.combine) == ("mirror", "signal-mean")
    with pytest.raises(ValidationError, match="flip: true means augmentations: mirror with combine: signal-mean"):
        LiRAAttack.Params(flip=True, augmentations="mirror-shifts")
    assert len(LiRAAttack.Params(augmentations="mirror-shifts").views()) == 18
    assert len(LiRAAttack.Params(augmentations="mirror-shifts", shift=2).views()) == 50
    assert LiRAAttack.Params(augmentations="mirror-shifts").views()[0] == (False, 0, 0)


# ------------------------------------------------------------------ queried models: counts and planted leaks

N, C = 600, 3
LABELS = np.random.default_rng(1).integers(0, C, N)
DIFFICULTY = np.random.default_rng(2).normal(1.0, 1.0, N)


def constant_pool():
    """Sample i is a 2-channel 3x3 image, constant per channel (i // 256, i % 256): every view of it names i."""
    index = torch.arange(N)
    inputs = torch.stack([index // 256, index % 256], 1).view(N, 2, 1, 1).expand(N, 2, 3, 3).to(torch.uint8)
    return Pool(inputs.contiguous(), torch.as_tensor(LABELS), C, (0.0, 0.0), (1.0, 1.0))


class QueriedModel(FakeAccess):
    """A planted model: true-class logit difficulty + boost on members, plus fresh noise on every query."""

    def __init__(self, pool, model_id, members, nonmembers, boost):
        self.margin = DIFFICULTY + boost * np.isin(np.arange(N), members)
        self.rng = np.random.default_rng(500 + model_id)
        self.images_queried = 0
        super().__init__(pool, members, nonmembers, self._answer)

    def _answer(self, indices):
        out = torch.zeros(len(indices), C, dtype=torch.float64)
        noisy = self.margin[indices] + self.rng.normal(0.0, 1.0, len(indices))
        out[torch.arange(len(indices)), torch.as_tensor(LABELS[indices])] = torch.as_tensor(noisy)
        return out

    def query(self, images):
        self.images_queried += len(images)
        codes = (images[:, :, 0, 0] * 255).round().long()
        return self._answer((codes[:, 0] * 256 + codes[:, 1]).numpy()).float()


def planted_pool_context(boost, models=9):
    """A pool of ``models``: every sample IN for a random half of them; model 0 the target, its tables
    balanced as the pool protocol balances them (as many IN as OUT references for every sample)."""
    pool = constant_pool()
    ranks = np.random.default_rng(3).random((models, N)).argsort(0)
    inside = ranks < models // 2
    all_models = [QueriedModel(pool, m, np.flatnonzero(inside[m]), np.flatnonzero(~inside[m]), boost)
                  for m in range(models)]
    ctx = context(all_models[0], all_models[1:], seed=4)
    ctx.reference_rules = ReferenceRules(per_side=models // 2 - 1)
    return ctx, all_models


def run_online(params, boost):
    ctx, models = planted_pool_context(boost)
    out = LiRAAttack(LiRAAttack.Params(mode="online", **params)).run(ctx)
    metrics = attack_metrics(membership(ctx, ctx.target), out.scores, LABELS[ctx.eval_indices], out.thresholds)
    return metrics, models


@pytest.mark.parametrize("params,want", [({}, 0), ({"augmentations": "mirror"}, 1),
                                         ({"augmentations": "mirror-shifts"}, 17),
                                         ({"augmentations": "mirror-shifts", "shift": 2}, 49),
                                         ({"preset": "authors"}, 1)])
def test_lira_sends_the_queries_it_declares(params, want):
    assert LiRAAttack.queries(LiRAAttack.Params(mode="online", **params)) == want  # what validate's estimate reads
    _, models = run_online(params, 0.0)
    assert models[0].images_queried == want * N  # on the target's evaluation samples: all N here


def test_views_are_queries_counted_per_sample_and_model():
    _, models = run_online({"augmentations": "mirror-shifts"}, 0.0)
    # the plain view comes from the cached logits; the other 17 are queries, on the target's N
    # evaluation samples and, for every reference, on its own samples (all N here)
    assert [m.images_queried for m in models] == [17 * N] * len(models)


@pytest.mark.parametrize("params", [{"preset": "authors"}, {"augmentations": "mirror-shifts"},
                                    {"augmentations": "mirror", "combine": "signal-mean"}])
def test_a_planted_leak_is_found_through_views_and_a_coin_flip_without(params):
    found, _ = run_online(params, 2.0)
    single, _ = run_online({}, 2.0)
    assert found.auc > 0.9 and found.auc > single.auc  # more views average the query noise away
    flat, _ = run_online(params, 0.0)
    assert flat.auc == pytest.approx(0.5, abs=0.06)


# ------------------------------------------------------------------ RMIA's authors' signals, trimmed mean and vote

ROW = [2.0, 0.5, -1.0]  # logits; label 0


def test_rmia_authors_signals_by_hand():
    logits, labels = torch.tensor([ROW]), torch.tensor([0])
    t, m = 2.0, 0.6
    exps = [math.exp(g / t) for g in ROW]
    assert likelihood_signal("softmax", logits, labels, t)[0] == pytest.approx(exps[0] / sum(exps), rel=1e-12)
    soft = math.exp(ROW[0] / t - m)
    want = soft / (soft + exps[1] + exps[2])
    assert likelihood_signal("soft-margin", logits, labels, t, m)[0] == pytest.approx(want, rel=1e-12)

    def taylor(u):  # order 4: 1 + u + u^2/2 + u^3/6
        return 1 + u + u * u / 2 + u ** 3 / 6

    true = taylor(ROW[0] / t - m)
    want = true / (true + taylor(ROW[1] / t) + taylor(ROW[2] / t))
    assert likelihood_signal("taylor-soft-margin", logits, labels, t, m, 4)[0] == pytest.approx(want, rel=1e-12)
    # order 2: 1 + u
    true2 = 1 + (ROW[0] / t - m)
    want2 = true2 / (true2 + 1 + ROW[1] / t + 1 + ROW[2] / t)
    assert likelihood_signal("taylor-soft-margin", logits, labels, t, m, 2)[0] == pytest.approx(want2, rel=1e-12)
    # temperature 1, margin 0: soft-margin is the plain probability
    plain = likelihood_signal("confidence", logits, labels)[0]
    assert likelihood_signal("soft-margin", logits, labels)[0] == pytest.approx(plain, rel=1e-12)


def test_trimmed_mean_cuts_each_end_as_scipy_does():
    rng = np.random.default_rng(6)
    values = rng.normal(size=(10, 7))
    full = np.ones((10, 7), bool)
    assert trimmed_mean(values, full, 0.2) == pytest.approx(scipy.stats.trim_mean(values, 0.2, axis=0), rel=1e-12)
    # Masked: column 0 keeps 6 of its values, int(0.2 * 6) = 1 cut from each end.
    mask = full.copy()
    mask[:4, 0] = False
    kept = np.sort(values[4:, 0])[1:-1]
    assert trimmed_mean(values, mask, 0.2)[0] == pytest.approx(kept.mean(), rel=1e-12)
    assert trimmed_mean(values, mask, 0.0)[0] == pytest.approx(values[4:, 0].mean(), rel=1e-12)
    # With views: each view trimmed on its own, the mask shared.
    views = np.stack([values, -values], axis=2)
    got = trimmed_mean(views, mask, 0.2)
    assert got.shape == (7, 2) and got[0, 1] == pytest.approx(-kept.mean(), rel=1e-12)
    # Online RMIA's Pr(s) trims over IN and OUT references alike.
    table = Table(np.zeros(7), values, mask, np.zeros_like(mask))
    assert marginal(table, 0.3, "online", 0.2)[0] == pytest.approx(kept.mean(), rel=1e-12)


def test_voted_dominance_counts_a_z_when_most_views_beat_it():
    # x's LR over 4 views against two z: z0 beaten on 3 of 4 views (yes), z1 on 2 of 4 (a tie: no).
    lr_x = np.array([[4.0, 4.0, 4.0, 1.0], [np.nan, 1.0, 1.0, 1.0]])
    lr_z = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 3.0, 3.0]])
    got = voted_dominance(lr_x, lr_z, gamma=2.0)
    assert got[0] == 0.5 and np.isnan(got[1])
    assert voted_dominance(lr_x[:1], lr_z, gamma=0.5).tolist() == [1.0]  # 4 > 0.5 * 3 and 1 > 0.5 * 1


def test_rmia_authors_preset():
    p = RMIAAttack.Params(preset="authors", mode="online")
    assert (p.signal, p.temperature, p.margin, p.taylor_order) == ("taylor-soft-margin", 2.0, 0.6, 4)
    assert (p.trimmed_mean, p.augmentations, p.gamma, p.a, p.population_size) == (0.2, "mirror-shifts", 2.0, 0.33, 1000)
    assert len(p.views()) == 18
    assert RMIAAttack.Params(preset="authors", gamma=1.0).gamma == 1.0  # given wins


def run_rmia(params, boost):
    ctx, models = planted_pool_context(boost)
    ctx.population = np.arange(N)[::3]  # a stand-in population (the planted models see no difference)
    out = RMIAAttack(RMIAAttack.Params(mode="online", **params)).run(ctx)
    metrics = attack_metrics(membership(ctx, ctx.target), out.scores, LABELS[ctx.eval_indices], out.thresholds)
    return metrics, models, out.info["population_samples"]


@pytest.mark.parametrize("params", [{"preset": "authors", "gamma": 1.0, "population_size": 100},
                                    {"augmentations": "mirror", "trimmed_mean": 0.2}])
def test_rmia_finds_a_planted_leak_through_views_and_calls_no_leak_a_coin_flip(params):
    found, models, z = run_rmia(params, 2.0)
    assert found.auc > 0.85
    # every view but the plain one, on the target's evaluation samples and its population samples z
    assert z == min(RMIAAttack.Params(**params).population_size, 200)
    assert models[0].images_queried == (len(RMIAAttack.Params(**params).views()) - 1) * (N + z)
    assert models[0].images_queried == RMIAAttack.queries(RMIAAttack.Params(**params)) * (N + z)  # as declared
    flat, _, _ = run_rmia(params, 0.0)
    assert flat.auc == pytest.approx(0.5, abs=0.06)
