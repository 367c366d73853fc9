"""End to end on digits with every attack: rows, shared shadows (counted), white-box checks."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

import mibench.engine.attacking
import mibench.engine.training
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench_plugins.attacks.rmia import RMIAAttack
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

ALL_ATTACKS = ["loss", "entropy", "m-entropy", "nn", "gradx-l2", "gradw-l2", "lira", "rmia"]
GRID = digits_grid(attacks="[loss, entropy, m-entropy, {name: nn, params: {epochs: 10}}, gradx-l2, gradw-l2, lira, rmia]",
                   shadow=3)


@pytest.fixture
def counted_training(monkeypatch):
    """Counts every training job the runner starts, by job key."""
    calls: Counter = Counter()
    roles: dict[str, str] = {}
    real = mibench.engine.training.run_train_job

    def counting(job, store, device):
        calls[job.key] += 1
        roles[job.key] = str(job.role)
        return real(job, store, device)

    monkeypatch.setattr(mibench.engine.training, "run_train_job", counting)
    return calls, roles


@pytest.fixture
def seen_populations(monkeypatch):
    seen = []
    real = RMIAAttack.run

    def spy(self, ctx):
        seen.append(ctx.population)
        return real(self, ctx)

    monkeypatch.setattr(RMIAAttack, "run", spy)
    return seen


def run(write_grid, registry, out, text):
    return run_grid(write_grid, registry, out, text).summary


def test_every_attack_end_to_end(write_grid, registry, tmp_path, counted_training, seen_populations):
    calls, roles = counted_training
    summary = run(write_grid, registry, tmp_path / "all", GRID)
    assert summary.ok, summary.failures
    results = pd.read_csv(tmp_path / "all" / "results.csv").set_index("attack_name")
    assert list(results.index) == ALL_ATTACKS
    assert (results["status"] == "ok").all() and results["shadow_count"].eq(3).all()
    for col in ["auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "balanced_acc"]:
        assert results[col].between(0, 1).all(), col
    assert results["threshold_mode"].to_dict() == {
        "loss": "per-class", "entropy": "per-class", "m-entropy": "per-class", "nn": "global",
        "gradx-l2": "per-class", "gradw-l2": "per-class", "lira": "global", "rmia": "global"}
    # One target and three shadows, each trained exactly once for all eight attacks.
    assert sorted(Counter(roles.values()).items()) == [("shadow-0", 1), ("shadow-1", 1), ("shadow-2", 1), ("target", 1)]
    assert set(calls.values()) == {1} and sorted(summary.trained) == sorted(calls)
    # RMIA drew its population from the protocol's shadow half.
    with np.load(next((tmp_path / "all" / "store" / "splits").glob("*.npz"))) as splits:
        np.testing.assert_array_equal(seen_populations[0], splits["shadow_half"])
    # Scores and membership are kept for every attack, to draw curves later.
    assert len(list((tmp_path / "all" / "store" / "attacks").glob("*.npz"))) == len(ALL_ATTACKS)


def test_one_ce_shadow_pool_serves_every_defense(write_grid, registry, tmp_path, counted_training):
    calls, roles = counted_training
    text = (GRID.replace("defenses: [ce]", "defenses: [ce, {name: flooding, params: {b: 0.5}}]")
            .replace("shadow: {count: 3}", "shadow: {count: 3, training: ce}"))
    summary = run(write_grid, registry, tmp_path / "shared", text)
    assert summary.ok, summary.failures
    assert len(summary.rows) == 2 * len(ALL_ATTACKS)
    assert {r.shadow_training for r in summary.rows} == {"ce"}
    # Two targets, one pool of three ce shadows: five trainings, none twice.
    assert Counter(roles.values()) == {"target": 2, "shadow-0": 1, "shadow-1": 1, "shadow-2": 1}
    assert set(calls.values()) == {1}


BLACK_BOX = digits_grid(defenses="[blackbox-ce]")


def test_white_box_attacks_on_a_black_box_model_fail_validation(write_grid, registry):
    text = BLACK_BOX.replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss, gradx-l2, lira, gradw-l2]")
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(text), registry)
    problems = [p.format("grid.yaml") for p in err.value.problems]
    assert len(problems) == 2
    assert "attacks[1]: attack 'gradx-l2' needs white-box access" in problems[0]
    assert "black-box models only: blackbox-ce" in problems[0]
    assert "attacks[3]: attack 'gradw-l2' needs white-box access" in problems[1]


def test_white_box_attacks_with_black_box_shadows_fail_validation(write_grid, registry):
    # The target is white box, but the shadows, where thresholds are calibrated, are not.
    text = digits_grid(attacks="[loss, gradw-l2]", shadow_training="blackbox-ce")
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(text), registry)
    assert [p.format("grid.yaml") for p in err.value.problems] == [
        "grid.yaml:7: attacks[1]: attack 'gradw-l2' needs white-box access, but these defenses release "
        "black-box models only: blackbox-ce (shadow.training)"]


def test_black_box_attacks_run_on_a_black_box_model(write_grid, registry, tmp_path):
    text = digits_grid(defenses="[blackbox-ce]", attacks="[{name: nn, params: {epochs: 5}}, lira, rmia]")
    summary = run(write_grid, registry, tmp_path / "bb", text)
    assert summary.ok, summary.failures
    assert [r.attack_name for r in summary.rows] == ["nn", "lira", "rmia"]


def test_lira_with_one_shadow_fails_validation(write_grid, registry):
    text = digits_grid(attacks="[loss, lira]", shadow=1)
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(text), registry)
    assert [p.format("grid.yaml") for p in err.value.problems] == [
        "grid.yaml:12: shadow.count: must be >= 2: attacks lira (at least 2) use shadow models"]
