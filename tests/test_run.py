"""End to end on digits: the runner trains, attacks, writes results; resumes; survives failures."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mibench.engine.attacking
import mibench.engine.training
from mibench.cli.main import main
from mibench.config.resolve import load_grid
from mibench.report.results import COLUMNS
from mibench.runner import Runner
from tests.conftest import DIGITS_GRID
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes


def run(write_grid, registry, out, text=DIGITS_GRID):
    return run_grid(write_grid, registry, out, text).summary


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("digits")
    path = out / "grid.yaml"
    path.write_text(DIGITS_GRID)
    summary = Runner(load_grid(path, registry), registry, out / "run", log=lambda _: None).run()
    return summary


def test_end_to_end_on_digits(digits_run):
    out = digits_run.output_dir
    assert digits_run.ok
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == COLUMNS
    assert results["attack"].tolist() == ["loss", "entropy", "m-entropy"]
    assert (results["status"] == "ok").all()
    assert results["shadow_count"].eq(2).all() and results["shadow_training"].eq("adaptive").all()
    assert results["n_members"].eq(450).all() and results["n_nonmembers"].eq(449).all()
    assert results["train_acc"].iloc[0] > 0.9 and results["test_acc"].iloc[0] > 0.7
    for col in ["auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "balanced_acc"]:
        assert results[col].between(0, 1).all(), col
    # A trained MLP leaks: the loss attack does better than a coin.
    assert results.set_index("attack").loc["loss", "auc"] > 0.5
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 1
    assert board.loc[0, "auc_loss_mean"] == pytest.approx(results.set_index("attack").loc["loss", "auc"])
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["grid"]["name"] == "digits-test"
    assert run_info["plan"] == {"targets": 1, "shadows": 2, "attack_jobs": 3, "jobs": 10}  # splits, 3 x train + predict, 3 attacks
    assert "torch_version" in run_info and run_info["device"] == "cpu"
    assert len(digits_run.trained) == 3


def test_splits_are_saved_and_disjoint(digits_run):
    splits = list((digits_run.output_dir / "store" / "splits").glob("*.npz"))
    assert len(splits) == 1
    with np.load(splits[0]) as s:
        members, nonmembers = s["target_members"], s["target_nonmembers"]
        assert np.intersect1d(members, nonmembers).size == 0
        target = np.r_[members, nonmembers]
        for i in range(2):
            shadow = np.r_[s[f"shadow{i}_members"], s[f"shadow{i}_nonmembers"]]
            assert np.intersect1d(shadow, target).size == 0


def test_models_are_stored_with_their_config_and_load_weights_only(digits_run):
    import torch

    models = sorted((digits_run.output_dir / "store" / "models").glob("*.pt"))
    assert len(models) == 3
    for path in models:
        saved = torch.load(path, weights_only=True)
        assert set(saved) == {"state_dict", "members"}
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["identity"]["defense"]["name"] == "ce"


def test_a_second_run_trains_nothing(digits_run, registry):
    path = digits_run.output_dir.parent / "grid.yaml"
    before = pd.read_csv(digits_run.output_dir / "results.csv")
    again = Runner(load_grid(path, registry), registry, digits_run.output_dir, log=lambda _: None).run()
    assert again.trained == []
    pd.testing.assert_frame_equal(before, pd.read_csv(digits_run.output_dir / "results.csv"))


def test_interrupted_run_resumes_without_training_twice(write_grid, registry, tmp_path, monkeypatch):
    calls = []
    real = mibench.engine.training.run_train_job

    def dies_on_third(job, store, device):
        calls.append(job.key)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed during the third training
        return real(job, store, device)

    monkeypatch.setattr(mibench.engine.training, "run_train_job", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(write_grid, registry, tmp_path / "resumed")
    monkeypatch.setattr(mibench.engine.training, "run_train_job", real)
    resumed = run(write_grid, registry, tmp_path / "resumed")
    assert len(resumed.trained) == 1 and resumed.trained[0] == calls[2]
    assert resumed.trained[0] not in calls[:2]

    fresh = run(write_grid, registry, tmp_path / "fresh")
    assert len(fresh.trained) == 3
    a = pd.read_csv(tmp_path / "resumed" / "results.csv")
    b = pd.read_csv(tmp_path / "fresh" / "results.csv")
    pd.testing.assert_frame_equal(a, b)


def test_a_failing_cell_is_recorded_and_the_others_finish(write_grid, cli_registry, tmp_path):
    grid = write_grid(DIGITS_GRID.replace("defenses: [ce]", "defenses: [boom, ce]").replace("count: 2", "count: 1"))
    result = CliRunner().invoke(main, ["run", str(grid), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "3 of 6 result rows failed" in result.output
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    boom = results[results["defense"] == "boom"]
    assert len(boom) == 3 and (boom["status"] == "failed").all()
    assert boom["error"].str.contains("boom: this defense always fails").all()
    ce = results[results["defense"] == "ce"]
    assert len(ce) == 3 and (ce["status"] == "ok").all() and ce["auc"].notna().all()
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv").set_index("defense")
    assert board.loc["boom", "failed_cells"] == 1 and board.loc["ce", "failed_cells"] == 0
    assert "RuntimeError: boom" in (tmp_path / "out" / "errors.log").read_text()


def test_a_third_party_defense_runs_end_to_end(write_grid, registry, tmp_path):
    text = digits_grid(defenses="[{name: flooding, params: {b: 0.3}}]")
    summary = run(write_grid, registry, tmp_path / "flood", text.replace("count: 2", "count: 1"))
    assert summary.ok
    assert {r.defense for r in summary.rows} == {"flooding(b=0.3)"}


def test_non_adaptive_shadows_are_shared_between_defenses(write_grid, registry, tmp_path):
    text = (DIGITS_GRID.replace("defenses: [ce]", "defenses: [ce, {name: flooding, params: {b: 0.5}}]")
            .replace("shadow: {count: 2}", "shadow: {count: 2, training: ce}"))
    summary = run(write_grid, registry, tmp_path / "shared", text)
    assert summary.ok
    # 2 targets + 2 ce shadows shared by both defenses
    assert len(summary.trained) == 4
    assert {r.shadow_training for r in summary.rows} == {"ce"}


def test_an_unreadable_dataset_fails_its_cells_only(write_grid, registry, tmp_path):
    folder = tmp_path / "broken-fmnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"not an idx file")
    text = DIGITS_GRID.replace("datasets: [digits]", f"datasets: [digits, {{name: fashion-mnist, params: {{root: {folder}}}}}]")
    summary = run(write_grid, registry, tmp_path / "out", text)
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert results[results["dataset"] == "digits"]["status"].eq("ok").all()
    broken = results[results["dataset"] == "fashion-mnist"]
    assert len(broken) == 3 and broken["status"].eq("failed").all()
    assert broken["error"].str.startswith("loading fashion-mnist failed: ValueError: ").all()
    assert "is not an IDX file" in broken["error"].iloc[0]
    assert not summary.ok


def test_speed_only_settings_reuse_every_model(digits_run, registry, write_grid):
    text = DIGITS_GRID.replace("batch_size: 64", "batch_size: 64\n  eval_batch_size: 7\n  channels_last: false")
    again = Runner(load_grid(write_grid(text), registry), registry, digits_run.output_dir, log=lambda _: None).run()
    assert again.trained == [] and again.ok


def test_releasing_a_new_epoch_keeps_the_checkpoints_already_released(write_grid, registry, tmp_path):
    text = DIGITS_GRID.replace("defenses: [ce]", "defenses: [{name: early-stopping, params: {epoch: 2}}]").replace(
        "count: 2", "count: 1").replace("epochs: 12", "epochs: 4")
    run(write_grid, registry, tmp_path / "es", text)
    models = tmp_path / "es" / "store" / "models"
    before = {p.name: p.stat().st_mtime_ns for p in models.glob("*.pt")}
    summary = run(write_grid, registry, tmp_path / "es", text.replace(
        "{name: early-stopping, params: {epoch: 2}}", "{name: early-stopping, sweep: {epoch: [2, 4]}}"))
    assert summary.ok and len(summary.trained) == 2  # the target and shadow runs go on to epoch 4
    after = {p.name: p.stat().st_mtime_ns for p in models.glob("*.pt")}
    assert len(after) == 4 and all(after[name] == mtime for name, mtime in before.items())


def test_roc_curves_are_drawn_from_the_stored_scores(digits_run, cli_registry):
    from mibench.report.plots import roc_points
    from mibench.engine.store import Store

    out = digits_run.output_dir
    results = pd.read_csv(out / "results.csv")
    for _, row in results.iterrows():
        fpr, tpr = roc_points(Store(out / "store"), row["attack_output"])
        assert np.trapezoid(tpr, fpr) == pytest.approx(row["auc"], abs=1e-6)  # the CSV keeps 6 digits
    result = CliRunner().invoke(main, ["roc", str(out)])
    assert result.exit_code == 0
    paths = result.output.split()
    assert len(paths) == 3 and all(p.endswith(".png") for p in paths)
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in paths)
    missing = CliRunner().invoke(main, ["roc", str(out / "nowhere")])
    assert missing.exit_code == 2 and "no results.csv here" in missing.output
