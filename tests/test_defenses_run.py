"""Every loss-based defense end to end on digits (target and adaptive shadows), and sweeps."""

import json

import numpy as np
import pytest
import pandas as pd
import torch

from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.plan import build_plan
from mibench.runner import Runner
from tests.conftest import DIGITS_GRID

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

DEFENSES = """defenses:
  - label-smoothing
  - confidence-penalty
  - {name: relaxloss, params: {alpha: 0.5}}
  - crl
  - imp-relaxloss
  - relaxed-center-loss
"""


def grid_text(defenses: str, epochs: int = 6) -> str:
    return (DIGITS_GRID.replace("defenses: [ce]\n", defenses)
            .replace("epochs: 12", f"epochs: {epochs}")
            .replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss, m-entropy]")
            .replace("count: 2", "count: 1"))


def test_every_loss_defense_runs_end_to_end(write_grid, registry, tmp_path):
    resolved = load_grid(write_grid(grid_text(DEFENSES)), registry)
    summary = Runner(resolved, registry, tmp_path / "out", log=lambda _: None).run()
    assert summary.ok, summary.failures
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == 6 * 2
    assert results["status"].eq("ok").all()
    # 6 targets + 6 adaptive shadows (one per defense config)
    assert len(summary.trained) == 12
    assert results["test_acc"].gt(0.5).all(), results[["defense", "test_acc"]]


def test_sweep_gives_one_row_per_value_with_the_swept_values(write_grid, registry, tmp_path):
    text = grid_text("defenses:\n  - ce\n  - name: crl\n    params: {lambda_: 0.3}\n    sweep: {alpha_rce: [0.3, 1.0]}\n", 4)
    summary = Runner(load_grid(write_grid(text), registry), registry, tmp_path / "o", log=lambda _: None).run()
    assert summary.ok
    board = pd.read_csv(tmp_path / "o" / "leaderboard.csv")
    assert board["defense"].tolist() == ["ce", "crl(alpha_rce=0.3, lambda_=0.3)", "crl(alpha_rce=1.0, lambda_=0.3)"]
    results = pd.read_csv(tmp_path / "o" / "results.csv")
    swept = results[results["defense_name"] == "crl"]["swept"].map(json.loads).tolist()
    assert {d["alpha_rce"] for d in swept} == {0.3, 1.0}


def test_early_stopping_sweep_trains_once_and_releases_each_epoch(write_grid, registry, tmp_path):
    text = grid_text("defenses:\n  - name: early-stopping\n    sweep: {epoch: [2, 5]}\n", 5)
    resolved = load_grid(write_grid(text), registry)
    plan = build_plan(resolved)
    targets, shadows = plan.model_count()
    assert (targets, shadows) == (2, 2) and len(plan.train_jobs) == 2  # one target run, one shadow run
    summary = Runner(resolved, registry, tmp_path / "es", log=lambda _: None).run()
    assert summary.ok and len(summary.trained) == 2
    results = pd.read_csv(tmp_path / "es" / "results.csv")
    assert sorted(results["defense"].unique()) == ["early-stopping(epoch=2)", "early-stopping(epoch=5)"]
    info = results.groupby("defense")["defense_info"].first().map(json.loads)
    assert info["early-stopping(epoch=2)"]["released_epoch"] == 2
    # The released checkpoints differ, and epoch 5's equals a plain 5-epoch CE run.
    models = {}
    for path in (tmp_path / "es" / "store" / "models").glob("*.json"):
        record = json.loads(path.read_text())
        if record["identity"]["role"] == "target":
            models[record["release_value"]] = torch.load(path.with_suffix(".pt"), weights_only=True)["state_dict"]
    assert set(models) == {2, 5}
    assert not torch.equal(models[2]["head.weight"], models[5]["head.weight"])

    ce = Runner(load_grid(write_grid(grid_text("defenses: [ce]\n", 5), "ce.yaml"), registry),
                registry, tmp_path / "ce", log=lambda _: None).run()
    assert ce.ok
    for path in (tmp_path / "ce" / "store" / "models").glob("*.json"):
        if json.loads(path.read_text())["identity"]["role"] == "target":
            plain = torch.load(path.with_suffix(".pt"), weights_only=True)["state_dict"]
            assert all(np.allclose(plain[k], models[5][k]) for k in plain)


def test_early_stopping_epoch_beyond_training_fails_at_validation(write_grid, registry):
    text = grid_text("defenses:\n  - {name: early-stopping, params: {epoch: 9}}\n", 3)
    path = write_grid(text)
    with pytest.raises(ConfigError) as info:
        load_grid(path, registry)
    assert str(info.value) == f"{path}:7: defenses[0]: early-stopping(epoch=9): epoch 9 is beyond training.epochs (3)"
