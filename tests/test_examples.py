"""The example third-party packages under examples/, installed like any outside package (tox.ini).

mibench-refset-distill: a defense with its own training loop and a reference-set
carve-out; mibench-label-only: a label-only attack that uses black-box queries only.
"""

import json
from importlib import metadata

import numpy as np
import pytest
import torch

from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from tests.conftest import DIGITS_GRID
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

DIGITS_TARGET_MEMBERS = 450  # the target's training split on digits (1,797 samples)
DIGITS_EVAL = 899  # its members and non-members


def run(write_grid, registry, out, text):
    ran = run_grid(write_grid, registry, out, text)
    assert ran.summary.ok, ran.summary.failures
    assert ran.summary.trained  # trained here, not found in a cache
    return ran.results


@pytest.mark.parametrize(
    "kind, name, package, module",
    [
        ("defense", "refset-distill", "mibench-refset-distill", "mibench_refset_distill"),
        ("attack", "label-only-aug", "mibench-label-only", "mibench_label_only"),
    ],
)
def test_example_is_registered_from_its_installed_distribution(registry, kind, name, package, module):
    info = registry.get(kind, name)
    assert info.package == package
    assert info.version == metadata.version(package)
    assert info.module == module


def test_refset_distill_members_exclude_its_reference_set(write_grid, registry, tmp_path):
    text = (DIGITS_GRID.replace("defenses: [ce]", "defenses: [{name: refset-distill, params: {reference_fraction: 0.2}}]")
            .replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss]")
            .replace("epochs: 12", "epochs: 6").replace("count: 2", "count: 1"))
    results = run(write_grid, registry, tmp_path / "x", text)
    row = results.iloc[0]
    assert row["status"] == "ok"
    reference = round(0.2 * DIGITS_TARGET_MEMBERS)
    assert row["n_members"] == DIGITS_TARGET_MEMBERS - reference and row["n_nonmembers"] == DIGITS_EVAL - DIGITS_TARGET_MEMBERS
    info = json.loads(row["defense_info"])
    assert info["reference_size"] == reference
    assert 0.5 < info["teacher_reference_acc"] <= 1.0  # the teacher learnt something worth distilling
    assert row["test_acc"] > 0.7

    store = tmp_path / "x" / "store"
    (split_file,) = store.glob("splits/*.npz")
    with np.load(split_file) as splits:
        train_split = splits["target_members"]
    members = torch.load(store / "models" / f"{row['target_model']}.pt", weights_only=True)["members"].numpy()
    carved = np.setdiff1d(train_split, members)
    assert np.isin(members, train_split).all() and len(carved) == reference
    # The carved-out samples are neither members nor non-members: the attack never scores them.
    with np.load(store / "attacks" / f"{row['attack_output']}.npz") as out:
        assert len(out["indices"]) == len(members) + DIGITS_EVAL - DIGITS_TARGET_MEMBERS
        assert not np.isin(carved, out["indices"]).any()


LABEL_ONLY_GRID = digits_grid(defenses="[blackbox-ce]", attacks="[label-only-aug]")


def test_label_only_attack_is_allowed_on_a_black_box_defense(write_grid, registry):
    load_grid(write_grid(LABEL_ONLY_GRID), registry)  # no error
    white_box = LABEL_ONLY_GRID.replace("attacks: [label-only-aug]", "attacks: [label-only-aug, gradx-l2]")
    with pytest.raises(ConfigError, match="gradx-l2.*needs white-box access"):
        load_grid(write_grid(white_box), registry)


def test_label_only_attack_scores_from_counted_queries(write_grid, registry, tmp_path):
    from mibench_label_only import COPIES, LabelOnlyAttack

    assert LabelOnlyAttack.query_cost == COPIES and not LabelOnlyAttack.needs_white_box
    overfit = LABEL_ONLY_GRID.replace("epochs: 12", "epochs: 40").replace("hidden: [64]", "hidden: [256]")
    results = run(write_grid, registry, tmp_path / "x", overfit)
    row = results.iloc[0]
    assert row["status"] == "ok" and row["threshold_mode"] == "global"
    assert row["train_acc"] > 0.99  # overfit
    key = row["attack_output"]
    meta = json.loads((tmp_path / "x" / "store" / "attacks" / f"{key}.json").read_text())
    assert meta["info"]["copies"] == COPIES
    assert meta["info"]["target_queries"] == DIGITS_EVAL * COPIES
    assert meta["info"]["calibration_samples"] == 2 * 898  # two shadows, each on its 449 + 449 samples
    with np.load(tmp_path / "x" / "store" / "attacks" / f"{key}.npz") as out:
        scores, membership, thresholds = out["scores"], out["membership"], out["thresholds"]
    assert len(scores) == DIGITS_EVAL
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(scores * COPIES, np.round(scores * COPIES))  # a share of COPIES labels
    assert 0 <= float(thresholds) <= 1 or np.isinf(thresholds)
    # The overfit model labels its members' shifted copies correctly more often.
    assert scores[membership].mean() > scores[~membership].mean()
    assert np.isfinite(row["auc"]) and row["auc"] > 0.5


def test_augmented_copies():
    from mibench_label_only import COPIES, augmented

    images = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).view(2, 1, 3, 4) / 24
    copies = augmented(images, shift=1)
    assert copies.shape == (COPIES, 2, 1, 3, 4)
    assert torch.equal(copies[0], images) and torch.equal(copies[1], images.flip(-1))
    assert torch.equal(copies[2][..., 1:], images[..., :-1])  # moved right by one pixel, wrapping
    assert torch.equal(copies[4][..., 1:, :], images[..., :-1, :])  # moved down by one pixel
