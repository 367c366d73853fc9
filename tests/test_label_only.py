"""The label-only attack (Choquette-Choo et al. 2021, REFERENCE §7): its augmented copies, its
query count, and planted leaks.

The planted "models" answer queries from a formula, no network: each image encodes its
pool index (constant per channel, which no flip or small zero-padded shift erases), and
a model labels each copy correctly with a probability set by the sample's difficulty,
its own noise and, when it leaks, a boost on its members.
"""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from mibench.engine.metrics import attack_metrics
from mibench.sdk import Pool, ReferenceNeeds
from mibench_plugins.attacks.label_only import LabelOnlyAttack, augmentations, rotated, rotations, translations
from mibench_plugins.attacks.views import shifted, view
from tests.fakes import FakeAccess, context, membership

N, C = 2000, 4  # 0..999 the target's evaluation samples (members 0..499), 1000..1999 the shadow half
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, C, N)
DIFFICULTY = RNG.normal(0.0, 1.0, N)


def id_pool() -> Pool:
    """2 x 8 x 8 images: channel 0 holds index // 256, channel 1 index % 256, everywhere."""
    ids = torch.arange(N)
    inputs = torch.stack([ids // 256, ids % 256], 1).view(N, 2, 1, 1).expand(N, 2, 8, 8).to(torch.uint8)
    return Pool(inputs.contiguous(), torch.as_tensor(LABELS), C, (0.0, 0.0), (1.0, 1.0))


def decode(images: torch.Tensor) -> np.ndarray:
    """Pool index of each [0, 1] image (a zero-padded border leaves the channel maximum alone)."""
    top = images.amax((-1, -2))
    assert top.max() <= 1  # [0, 1] images, as ModelView.query takes them
    levels = torch.round(top * 255).long()
    return (levels[:, 0] * 256 + levels[:, 1]).numpy()


class QueryModel(FakeAccess):
    """Labels each queried copy correctly with probability sigmoid(difficulty + noise + boost * member)."""

    def __init__(self, pool, members, nonmembers, model_id, boost):
        super().__init__(pool, members, nonmembers)
        rng = np.random.default_rng(100 + model_id)
        margin = DIFFICULTY + rng.normal(0.0, 0.3, N) + boost * np.isin(np.arange(N), members)
        self.p_correct = 1 / (1 + np.exp(-margin))
        self.rng = np.random.default_rng(200 + model_id)
        self.images_queried = 0

    def query(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape[1:] == (2, 8, 8)
        ids = decode(images)
        self.images_queried += len(ids)
        correct = self.rng.random(len(ids)) < self.p_correct[ids]
        predicted = np.where(correct, LABELS[ids], (LABELS[ids] + 1) % C)
        return torch.nn.functional.one_hot(torch.as_tensor(predicted), C).float()


def planted_context(boost, shadows=2):
    pool = id_pool()
    target = QueryModel(pool, np.arange(500), np.arange(500, 1000), 0, boost)
    views = []
    for i in range(shadows):
        members = np.sort(np.random.default_rng(i).permutation(np.arange(1000, 2000))[:500])
        views.append(QueryModel(pool, members, np.setdiff1d(np.arange(1000, 2000), members), 1 + i, boost))
    return context(target, views, seed=3)


# Large batches: few query calls keep the tests fast (batch_size changes no result). The square
# copies counted, mibench's earlier default, unless a test says otherwise.
SQUARE = {"family": "square", "decision": "count"}
FAST = LabelOnlyAttack.Params(batch_size=2000, **SQUARE)


def evaluate(boost):
    ctx = planted_context(boost)
    out = LabelOnlyAttack(FAST).run(ctx)
    assert len(out.scores) == 1000
    return attack_metrics(membership(ctx, ctx.target), out.scores, LABELS[ctx.eval_indices], out.thresholds)


# ------------------------------------------------------------------ augmented copies


@pytest.mark.parametrize("r", [1, 2, 3, 4])
def test_there_are_2_times_2r_plus_1_squared_distinct_copies(r):
    copies = augmentations(r)
    assert len(copies) == 2 * (2 * r + 1) ** 2 == {1: 18, 2: 50, 3: 98, 4: 162}[r]
    assert len(set(copies)) == len(copies)
    image = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(r))
    images = torch.stack([view(image, *a) for a in copies]).flatten(1)
    assert len(torch.unique(images, dim=0)) == len(copies)  # no two augmentations give the same image


def test_shifts_pad_with_zeros_and_do_not_wrap():
    image = torch.arange(1.0, 10.0).view(1, 1, 3, 3)  # rows 1 2 3 / 4 5 6 / 7 8 9
    assert shifted(image, 1, 0).view(3, 3).tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shifted(image, 0, -1).view(3, 3).tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert shifted(image, -1, 1).view(3, 3).tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]
    assert shifted(image, 0, 0).equal(image)
    assert shifted(image, 3, 0).eq(0).all()
    assert view(image, True, 1, 0).view(3, 3).tolist() == [[0, 3, 2], [0, 6, 5], [0, 9, 8]]  # mirror, then shift


@pytest.mark.parametrize("r", [1, 2])
def test_the_target_gets_k_queries_per_evaluated_sample(r):
    ctx = planted_context(boost=4.0)
    out = LabelOnlyAttack(LabelOnlyAttack.Params(shift_radius=r, calibration_samples=300, batch_size=1000,
                                                 **SQUARE)).run(ctx)
    k = 2 * (2 * r + 1) ** 2
    assert out.info["copies"] == k
    assert ctx.target.images_queried == k * len(ctx.eval_indices)
    assert set(np.unique(out.scores)) <= set(range(k + 1))  # the number of copies labelled right
    assert ctx.target.queries == []  # labels from queries only, never a cached prediction


def test_calibration_uses_the_first_shadows_and_a_stratified_subsample():
    ctx = planted_context(boost=4.0, shadows=3)
    attack = LabelOnlyAttack(LabelOnlyAttack.Params(calibration_models=2, calibration_samples=200, batch_size=2000,
                                                    **SQUARE))
    out = attack.run(ctx)
    assert out.info["calibration_samples"] == 400
    assert [s.images_queried for s in ctx.references] == [18 * 200, 18 * 200, 0]
    assert out.threshold_mode == "global" and np.isfinite(out.thresholds)


def test_declared_needs_and_cost():
    assert LabelOnlyAttack.needs(LabelOnlyAttack.Params()) == ReferenceNeeds(count=1)
    assert LabelOnlyAttack.query_cost == 5.0  # the default: the authors' 4d + 1 translations at d = 1
    defaults = LabelOnlyAttack.Params()
    assert (defaults.family, defaults.distance, defaults.decision) == ("translation", 1, "network")
    assert not LabelOnlyAttack.needs_white_box


@pytest.mark.parametrize("bad", [{"shift_radius": 0}, {"shift_radius": 5}, {"calibration_models": 0}])
def test_params_out_of_range_are_refused(bad):
    with pytest.raises(ValidationError, match=next(iter(bad))):
        LabelOnlyAttack.Params(**bad)


def test_label_only_is_a_built_in_attack(registry):
    info = registry.get("attack", "label-only")
    assert info.cls is LabelOnlyAttack and info.package == "mibench"  # shipped with mibench, not a plugin package


# ------------------------------------------------------------------ planted leaks


def test_a_planted_leak_is_found():
    metrics = evaluate(boost=4.0)
    assert metrics.auc > 0.95
    assert metrics.balanced_accuracy > 0.85


def test_answers_that_ignore_membership_give_a_coin_flip():
    metrics = evaluate(boost=0.0)
    assert metrics.auc == pytest.approx(0.5, abs=0.05)
    assert metrics.balanced_accuracy == pytest.approx(0.5, abs=0.05)


# ------------------------------------------------------------------ the authors' form: translation, rotation, network


@pytest.mark.parametrize("d", [1, 2, 3])
def test_translations_are_the_unshifted_image_and_the_4d_shifts_at_distance_d(d):
    moves = translations(d)
    assert len(moves) == 4 * d + 1 == len(set(moves)) and moves[0] == (0, 0)
    assert all(abs(dx) + abs(dy) == d for dx, dy in moves[1:])


def test_rotations_and_a_rotated_image_by_hand():
    assert rotations(4).tolist() == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    image = torch.arange(1.0, 10.0).view(1, 1, 3, 3) / 10
    # a quarter turn (counter-clockwise as displayed) moves every pixel onto the grid: no interpolation error
    assert rotated(image, 90).view(3, 3).mul(10).round().tolist() == [[3, 6, 9], [2, 5, 8], [1, 4, 7]]
    assert rotated(image, 0) is image
    flat = torch.full((1, 2, 8, 8), 0.4)
    assert torch.allclose(rotated(flat, 3.0), flat)  # a constant image stays itself (nearest-filled corners)


@pytest.mark.parametrize("params,k", [({"family": "translation", "distance": 2}, 9),
                                      ({"family": "rotation", "rotation": 3}, 7),
                                      ({"preset": "authors"}, 5)])
def test_each_family_sends_its_k_queries_per_sample(params, k):
    ctx = planted_context(boost=4.0)
    out = LabelOnlyAttack(LabelOnlyAttack.Params(calibration_samples=300, batch_size=1000, **params)).run(ctx)
    assert out.info["copies"] == k
    assert ctx.target.images_queried == k * len(ctx.eval_indices)
    assert LabelOnlyAttack.queries(LabelOnlyAttack.Params(**params)) == k  # what validate's estimate reads
    assert [s.images_queried for s in ctx.references] == [k * 300, k * 300]


def test_the_authors_preset():
    p = LabelOnlyAttack.Params(preset="authors")
    assert (p.family, p.distance, p.decision) == ("translation", 1, "network")
    assert LabelOnlyAttack.Params(preset="authors", distance=3).distance == 3  # given wins


def test_the_network_decision_finds_a_planted_leak_and_calls_no_leak_a_coin_flip():
    def run(boost):
        ctx = planted_context(boost)
        params = LabelOnlyAttack.Params(family="translation", distance=2, decision="network", batch_size=2000)
        out = LabelOnlyAttack(params).run(ctx)
        return attack_metrics(membership(ctx, ctx.target), out.scores, LABELS[ctx.eval_indices], out.thresholds), out

    found, out = run(4.0)
    assert found.auc > 0.85 and found.balanced_accuracy > 0.75
    assert len(np.unique(out.scores)) > 10  # a member probability, not a count of K + 1 values
    flat, _ = run(0.0)
    assert flat.auc == pytest.approx(0.5, abs=0.06)
