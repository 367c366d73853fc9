"""LiRA and RMIA against hand computations (REFERENCE §4), on fixed logits."""

import math
import statistics

import numpy as np
import pytest
import torch

from mibench.sdk.thresholds import best_threshold
from mibench.sdk.dataset import Pool
from mibench.sdk.reference_attack import Table
from mibench_plugins.attacks.lira import LiRAAttack, lira_offline_scores, scaled_logit
from mibench_plugins.attacks.rmia import RMIAAttack, dominance, likelihood_ratio
from tests.fakes import FakeAccess, context, label_pool, table_logits


def softmax(row):
    exps = [math.exp(v - max(row)) for v in row]
    return [e / sum(exps) for e in exps]


def phi_by_hand(row, y):
    p = softmax(row)
    return math.log(p[y]) - math.log(sum(p[i] for i in range(len(p)) if i != y))


def lira_score_by_hand(phi_target, phi_shadows, sigma=None):
    mu = statistics.fmean(phi_shadows)
    sigma = statistics.pstdev(phi_shadows) if sigma is None else sigma
    p_value = 0.5 * math.erfc((phi_target - mu) / sigma / math.sqrt(2))  # Pr[Z >= phi_target]
    return -math.log(p_value)


# ------------------------------------------------------------------------------ LiRA


def test_scaled_logit_by_hand():
    rows, labels = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [-3.0, 4.0, 1.0]], [0, 0, 2]
    got = scaled_logit(torch.tensor(rows), torch.tensor(labels))
    assert got.dtype == np.float64
    assert got.tolist() == pytest.approx([phi_by_hand(r, y) for r, y in zip(rows, labels)], rel=1e-6)
    # p = softmax(2, 0, -1) = (0.843795, 0.114195, 0.042010): log(0.843795 / 0.156205)
    assert got[0] == pytest.approx(1.686738, abs=1e-6)


def test_scaled_logit_stays_exact_where_probabilities_saturate():
    # p_y rounds to 1 in float64, so log p_y - log(1 - p_y) computed naively is inf.
    got = scaled_logit(torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 80.0, 0.0]]), torch.tensor([0, 0]))
    assert got[0] == pytest.approx(1000.0)
    assert got[1] == pytest.approx(-80.0 - math.log(1 + math.exp(-80.0)))


LIRA_LOGITS = {
    # evaluation samples 0 (member) and 1 (non-member); labels 0 and 1
    "target": {0: [3.0, 0.0, -1.0], 1: [0.5, 1.0, 0.0]},
    "shadows": [
        {0: [1.0, 0.0, 0.0], 1: [0.0, 2.0, 0.0]},
        {0: [2.0, 0.5, 0.0], 1: [0.0, 1.5, 1.0]},
        {0: [0.5, 0.0, 0.5], 1: [1.0, 2.5, 0.0]},
    ],
}
LABELS = [0, 1, 0, 1, 2, 0, 1, 2]  # pool of 8: 0-1 evaluation, 2-7 the shadow half
SHADOW_SPLITS = [([2, 3, 4], [5, 6, 7]), ([2, 5, 6], [3, 4, 7]), ([3, 5, 6], [2, 4, 7])]
# Logits on the shadow half: one base row per sample plus noise of each model (3 shadows, then the target).
BASE = np.random.default_rng(9).normal(size=(8, 3))
HALF = [{i: (BASE[i] + np.random.default_rng(m).normal(0, 0.5, size=3)).tolist() for i in range(2, 8)}
        for m in range(4)]


def lira_context():
    pool = label_pool(LABELS, 3)

    def access(rows, half, members, nonmembers):
        return FakeAccess(pool, members, nonmembers, table_logits({**rows, **half}))

    target = access(LIRA_LOGITS["target"], HALF[3], [0], [1])
    shadows = [access(rows, HALF[j], m, n)
               for j, (rows, (m, n)) in enumerate(zip(LIRA_LOGITS["shadows"], SHADOW_SPLITS))]
    return context(target, shadows, population=np.arange(2, 8))


def lira_by_hand(fix_variance):
    phis = []
    for i in (0, 1):
        target = phi_by_hand(LIRA_LOGITS["target"][i], LABELS[i])
        shadows = [phi_by_hand(s[i], LABELS[i]) for s in LIRA_LOGITS["shadows"]]
        phis.append((target, shadows))
    sigma = None
    if fix_variance:
        sigma = math.sqrt(statistics.fmean(statistics.pvariance(s) for _, s in phis))
    return [lira_score_by_hand(t, s, sigma) for t, s in phis]


@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_scores_by_hand(fix_variance):
    out = LiRAAttack(LiRAAttack.Params(fix_variance=fix_variance)).run(lira_context())
    assert out.scores.tolist() == pytest.approx(lira_by_hand(fix_variance), rel=1e-9)


def test_lira_gaussian_uses_only_out_references():
    # Sample 0: references 1, 2 and 100, the last one IN: mean 1.5, sigma 0.5.
    # Sample 1: one OUT reference only: no per-sample sigma, so no score.
    table = Table(
        target=np.array([2.5, 0.0]),
        refs=np.array([[1.0, 3.0], [2.0, 5.0], [100.0, 7.0]]),
        out=np.array([[True, True], [True, False], [False, False]]),
    )
    got = lira_offline_scores(table)
    assert got[0] == pytest.approx(-math.log(0.5 * math.erfc(2.0 / math.sqrt(2))))  # z = 2
    assert np.isnan(got[1])
    # With one global sigma (from sample 0's variance) sample 1 is scored: z = (0 - 3) / 0.5.
    fixed = lira_offline_scores(table, fix_variance=True)
    assert fixed[1] == pytest.approx(-math.log(0.5 * math.erfc(-6.0 / math.sqrt(2))))


def test_lira_is_one_sided():
    # A target phi far *below* the OUT mean is the least member-like, not the most.
    table = Table(np.array([-10.0, 0.0, 10.0]), np.array([[-1.0] * 3, [1.0] * 3]), np.ones((2, 3), bool))
    low, mid, high = lira_offline_scores(table)
    assert low < mid < high and low == pytest.approx(0.0, abs=1e-12)


def test_lira_needs_two_shadows():
    ctx = lira_context()
    ctx.references = ctx.references[:1]
    with pytest.raises(ValueError, match="lira.*at least 2 reference models, got 1"):
        LiRAAttack().run(ctx)


def test_lira_calibrates_a_global_threshold_leave_one_out():
    # Each shadow plays the target in turn, with the two others as references; a sample
    # counts when both are OUT for it: shadow 0 on samples 4 (its member) and 7,
    # shadows 1 and 2 on sample 7 (a non-member of both).
    def by_hand(j, i):
        others = [k for k in range(3) if k != j]
        refs = [phi_by_hand(HALF[k][i], LABELS[i]) for k in others]
        return lira_score_by_hand(phi_by_hand(HALF[j][i], LABELS[i]), refs)

    cal = np.array([by_hand(0, 4), by_hand(0, 7), by_hand(1, 7), by_hand(2, 7)])
    out = LiRAAttack().run(lira_context())
    assert out.info["calibration_samples"] == 4
    assert out.threshold_mode == "global"
    # (rel 1e-6: the attack sees the logits in float32, as ModelAccess serves them)
    assert out.thresholds == pytest.approx(best_threshold(cal, np.array([True, False, False, False])), rel=1e-6)


def test_calibration_lets_a_seeded_draw_of_calibration_models_references_play_the_target():
    # With calibration_models = 1 of the three shadows, one plays the target against the
    # two others: shadow 0 on samples 4 (member) and 7 (2 samples, a threshold), or
    # shadow 1 or 2 on sample 7 alone (1 sample, non-members only: no threshold).
    def by_hand(j, i):
        refs = [phi_by_hand(HALF[k][i], LABELS[i]) for k in range(3) if k != j]
        return lira_score_by_hand(phi_by_hand(HALF[j][i], LABELS[i]), refs)

    class OnePlayer(LiRAAttack):
        calibration_models = 1

    full = LiRAAttack().run(lira_context())
    seen = set()
    for seed in range(12):
        ctx = lira_context()
        ctx.seed = seed
        out = OnePlayer().run(ctx)
        assert out.scores.tolist() == full.scores.tolist()  # calibration only: the scores are the target's
        seen.add(out.info["calibration_samples"])
        if out.info["calibration_samples"] == 2:
            cal = np.array([by_hand(0, 4), by_hand(0, 7)])
            assert out.thresholds == pytest.approx(best_threshold(cal, np.array([True, False])), rel=1e-6)
        else:
            assert out.info["calibration_samples"] == 1 and out.thresholds is None
        again = lira_context()
        again.seed = seed
        assert OnePlayer().run(again).info == out.info  # seeded
    assert seen == {1, 2}  # the draw varies with the seed


def test_carved_out_samples_are_neither_in_nor_out():
    # Shadow 0 carved sample 7 out of its split (a defense's reference set): 7 is no
    # longer OUT for it, so it leaves shadow 0's own calibration samples and, as a
    # reference, no longer serves shadows 1 and 2 on sample 7. Only (0, 4) remains.
    ctx = lira_context()
    ctx.references[0].excluded = np.array([7])
    out = LiRAAttack().run(ctx)
    assert out.info["calibration_samples"] == 1


# ------------------------------------------------------------------------------ RMIA


def p_logits(p):
    """Two-class logits whose softmax is (p, 1 - p): label 0 has probability p."""
    return [math.log(p), math.log(1 - p)]


def rmia_context():
    # Pool: 0 and 1 evaluated (0 a member of the target), 2-5 the population.
    # Shadow 0 trained on 2, 3; shadow 1 on 2, 4. Sample 2 has no OUT shadow.
    pool = label_pool([0] * 6, 2)
    target = {0: 0.9, 1: 0.4, 2: 0.7, 3: 0.2, 4: 0.5, 5: 0.6}
    shadow0 = {0: 0.5, 1: 0.5, 2: 0.9, 3: 0.9, 4: 0.3, 5: 0.4}
    shadow1 = {0: 0.7, 1: 0.3, 2: 0.9, 3: 0.5, 4: 0.95, 5: 0.6}

    def access(ps, members, nonmembers):
        return FakeAccess(pool, members, nonmembers, table_logits({i: p_logits(p) for i, p in ps.items()}))

    return context(access(target, [0], [1]), [access(shadow0, [2, 3], [4, 5]), access(shadow1, [2, 4], [3, 5])],
                   population=np.arange(2, 6))


def test_rmia_likelihood_ratios_by_hand():
    # a = 0.3: Pr(s) = 0.65 * mean over OUT shadows + 0.35
    x = Table(np.array([0.9, 0.4]), np.array([[0.5, 0.5], [0.7, 0.3]]), np.ones((2, 2), bool))
    assert likelihood_ratio(x, 0.3).tolist() == pytest.approx([0.9 / 0.74, 0.4 / 0.61])
    # Population: sample 3 is OUT for shadow 1 only, 4 for shadow 0 only, 5 for both.
    z = Table(np.array([0.2, 0.5, 0.6]), np.array([[0.9, 0.3, 0.4], [0.5, 0.95, 0.6]]),
              np.array([[False, True, True], [True, False, True]]))
    assert likelihood_ratio(z, 0.3).tolist() == pytest.approx([0.2 / 0.675, 0.5 / 0.545, 0.6 / 0.675])


@pytest.mark.parametrize("gamma,want", [(1.0, [1.0, 1 / 3]), (2.0, [1 / 3, 1 / 3]), (0.72, [1.0, 2 / 3])])
def test_rmia_scores_by_hand(gamma, want):
    # LR(x) = 1.2162, 0.6557; LR(z) = 0.2963, 0.9174, 0.8889 (sample 2 has no OUT shadow: not drawn).
    # x beats z when LR(z) < LR(x) / gamma; for x1 at gamma 0.72: LR(z) < 0.9107, two of three.
    out = RMIAAttack(RMIAAttack.Params(gamma=gamma)).run(rmia_context())
    assert out.info["population_samples"] == 3
    assert out.scores.tolist() == pytest.approx(want)


def brute_force_dominance(lr_x, lr_z, gamma):
    return (lr_x[:, None] / lr_z[None, :] > gamma).mean(1)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.7])
def test_sorted_count_equals_the_n_times_m_count(gamma):
    rng = np.random.default_rng(3)
    lr_x, lr_z = rng.lognormal(size=700), rng.lognormal(size=900)
    lr_z[:5] = lr_x[:5] / gamma * 2  # a few exact multiples, to test the strict inequality
    np.testing.assert_array_equal(dominance(lr_x, lr_z, gamma), brute_force_dominance(lr_x, lr_z, gamma))


def test_rmia_population_skips_samples_carved_out_of_every_out_shadow():
    # Sample 3: shadow 0 trained on it; carved out of shadow 1's split it has no OUT shadow left.
    ctx = rmia_context()
    assert RMIAAttack().run(ctx).info["population_samples"] == 3  # 3, 4, 5 (2 has no OUT shadow)
    ctx.references[1].excluded = np.array([3])
    assert RMIAAttack().run(ctx).info["population_samples"] == 2


def test_rmia_draws_a_seeded_population():
    ctx = rmia_context()
    small = RMIAAttack(RMIAAttack.Params(population_size=2))
    a, b = small.run(ctx), small.run(ctx)
    assert a.info["population_samples"] == 2
    np.testing.assert_array_equal(a.scores, b.scores)


class _Asymmetric(torch.nn.Module):
    """A fixed linear model on 1 x 2 x 3 images whose output changes under a left-right mirror."""

    def __init__(self):
        super().__init__()
        self.weight = torch.arange(18, dtype=torch.float32).view(3, 6) / 10 - 0.8

    def forward(self, x):
        flat = x.flatten(1)
        return flat @ self.weight.T, flat


class _Queried(FakeAccess):
    """A fake model that also answers black-box queries on [0, 1] images (the pool: mean 0, std 1)."""

    def __init__(self, pool, members, nonmembers, module):
        super().__init__(pool, members, nonmembers, module=module)
        self.images_queried = 0

    def query(self, images):
        self.images_queried += len(images)
        with torch.no_grad():
            return self._module(images)[0]


def test_lira_flip_averages_phi_over_the_sample_and_its_mirror():
    inputs = torch.randint(0, 256, (5, 1, 2, 3), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    labels = torch.tensor([0, 1, 2, 1, 0])
    pool = Pool(inputs, labels, 3, (0.0,), (1.0,))
    model = _Queried(pool, np.array([0, 1]), np.array([2, 3, 4]), _Asymmetric())
    indices = np.array([4, 0, 2])
    images = inputs[indices].float() / 255
    direct, mirrored = _Asymmetric()(images)[0], _Asymmetric()(images.flip(-1))[0]
    assert not torch.allclose(direct, mirrored)  # the mirror changes the answer
    want = [(phi_by_hand(direct[i].tolist(), int(labels[j])) + phi_by_hand(mirrored[i].tolist(), int(labels[j]))) / 2
            for i, j in enumerate(indices)]
    got = LiRAAttack(LiRAAttack.Params(flip=True)).model_signal(model, indices)
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    assert model.images_queried == 3  # one mirrored query per sample, black box
    plain = LiRAAttack().model_signal(model, indices)
    assert plain.tolist() == pytest.approx([phi_by_hand(direct[i].tolist(), int(labels[j]))
                                            for i, j in enumerate(indices)], rel=1e-5)
    assert model.images_queried == 3  # no flip: no query
