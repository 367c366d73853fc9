"""A diverged training run fails its rows with a training error, stores no model, and a NaN threshold
never reaches an ok row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mibench.engine.protocols.splits import PaperSplits
from mibench.registry.loading import default_manager
from mibench.sdk import (
    AttackOutput,
    Defense,
    LossDefense,
    Objective,
    TrainedModel,
    Trainer,
    TrainingConfig,
    TrainingDiverged,
    hookimpl,
)
from mibench_plugins.attacks.confidence import LossAttack
from mibench_plugins.architectures.small import MLP
from tests.conftest import _digits_pool
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes


class Cross(Objective):
    """Plain cross-entropy."""

    def forward(self, logits, features, targets, epoch):
        return F.cross_entropy(logits, targets)


class InfAfterFirstEpoch(Objective):
    """Cross-entropy for epoch 1, then the loss times inf: the weights go NaN in epoch 2."""

    def forward(self, logits, features, targets, epoch):
        loss = F.cross_entropy(logits, targets)
        return loss * float("inf") if epoch >= 2 else loss


class Diverge(LossDefense):
    """Diverges in epoch 2, whatever the role."""

    name = "test-diverge"

    def objective(self, spec):
        return InfAfterFirstEpoch()


class DivergeShadow0(Defense):
    """Trains plainly, except the first shadow, which diverges in epoch 2 (the user trial)."""

    name = "test-diverge-shadow0"

    def train(self, job):
        model = job.build_model()
        objective = InfAfterFirstEpoch() if str(job.role) == "shadow-0" else Cross()
        job.trainer.fit(model, job.train_indices, objective)
        return TrainedModel(model, np.asarray(job.train_indices))


class NaNWeight(Defense):
    """A custom loop (no Trainer.fit) that releases a model with one NaN weight."""

    name = "test-nan-weight"

    def train(self, job):
        model = job.build_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x = job.trainer.inputs(job.train_indices)
        y = job.pool.labels[torch.as_tensor(job.train_indices)]
        logits, _ = model(x)
        F.cross_entropy(logits, y).backward()
        optimizer.step()
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("nan")
        return TrainedModel(model, np.asarray(job.train_indices))


class NaNPerClass(LossAttack):
    """The loss attack with a NaN per-class threshold (what a diverged shadow's calibration gives)."""

    name = "test-nan-per-class"

    def run(self, ctx):
        out = super().run(ctx)
        thresholds = np.array(out.thresholds, dtype=np.float64)
        thresholds[3] = np.nan
        return AttackOutput(out.scores, thresholds, "per-class")


class NaNGlobal(LossAttack):
    """The loss attack with a NaN global threshold."""

    name = "test-nan-global"

    def run(self, ctx):
        out = super().run(ctx)
        return AttackOutput(out.scores, float("nan"), "global")


class Plugins:
    @hookimpl
    def register_defenses(self, register):
        for cls in (Diverge, DivergeShadow0, NaNWeight):
            register(cls)

    @hookimpl
    def register_attacks(self, register):
        for cls in (NaNPerClass, NaNGlobal):
            register(cls)


@pytest.fixture(scope="module")
def registry():
    manager = default_manager()
    manager.register(Plugins(), name="tests.divergence")
    return manager.build_registry()


def run(write_grid, registry, out, defense="ce", attacks="[loss, entropy, m-entropy]"):
    ran = run_grid(write_grid, registry, out, digits_grid(epochs=3, shadow=1, defenses=f"[{defense}]", attacks=attacks))
    return ran.summary, ran.results


def stored_models(out):
    return sorted((out / "store" / "models").glob("*.pt"))


def test_a_diverged_run_fails_every_row_and_stores_no_model(write_grid, registry, tmp_path):
    summary, results = run(write_grid, registry, tmp_path / "out", defense="test-diverge")
    assert not summary.ok and summary.trained == []
    assert len(results) == 3 and results["status"].eq("failed").all()
    assert results["error"].str.fullmatch(
        r"training (target|shadow-0) failed: TrainingDiverged: training diverged at epoch 2 \(loss nan\)").all()
    log = (tmp_path / "out" / "errors.log").read_text()
    assert log.count("TrainingDiverged: training diverged at epoch 2") == 2  # the target and the shadow
    assert results["auc"].isna().all()
    assert stored_models(tmp_path / "out") == []
    assert not list((tmp_path / "out" / "store" / "models").glob("*.json"))


def test_one_diverged_shadow_fails_the_rows_that_use_it(write_grid, registry, tmp_path):
    summary, results = run(write_grid, registry, tmp_path / "out", defense="test-diverge-shadow0")
    assert not summary.ok
    assert results["status"].eq("failed").all()  # no row at status ok with NaN thresholds
    assert results["error"].str.startswith(
        "training shadow-0 failed: TrainingDiverged: training diverged at epoch 2 (loss").all()
    assert len(stored_models(tmp_path / "out")) == 1  # the target's; not the diverged shadow's
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert board.filter(like="auc").isna().all().all()  # nothing from this cell goes into the means


def test_non_finite_weights_from_a_custom_loop_are_never_stored(write_grid, registry, tmp_path):
    summary, results = run(write_grid, registry, tmp_path / "out", defense="test-nan-weight", attacks="[loss]")
    assert not summary.ok
    assert len(results) == 1 and results["status"].eq("failed").all()
    assert results["error"].str.fullmatch(r"training (target|shadow-0) failed: TrainingDiverged: "
                                          r"training diverged: 1 non-finite weights in the released model").all()
    assert stored_models(tmp_path / "out") == []


def test_the_trainer_raises_at_the_epoch_that_diverges():
    pool = _digits_pool()
    config = TrainingConfig(epochs=4, batch_size=64, optimizer={"name": "sgd", "lr": 0.1})
    trainer = Trainer(config, pool, torch.device("cpu"), seed=0)
    members = PaperSplits.build(len(pool), 0).target.members
    torch.manual_seed(0)
    model = MLP(MLP.Params(hidden=[16])).build(pool.input_shape, pool.num_classes)
    epochs_done = []
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 2 \(loss (nan|inf)\)$") as caught:
        trainer.fit(model, members, InfAfterFirstEpoch(), on_epoch_end=lambda e, m: epochs_done.append(e))
    assert isinstance(caught.value, FloatingPointError)
    assert epochs_done == [1]  # no checkpoint of the diverged epoch

    class Inf(Objective):
        def forward(self, logits, features, targets, epoch):
            return logits.sum() * 0 + float("inf")  # inf, but no NaN: the gradient is zero

    fresh = MLP(MLP.Params(hidden=[16])).build(pool.input_shape, pool.num_classes)
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 1 \(loss inf\)$"):
        trainer.fit(fresh, members, Inf())


def test_nan_thresholds_are_refused(write_grid, registry, tmp_path):
    summary, results = run(write_grid, registry, tmp_path / "out",
                           attacks="[loss, test-nan-per-class, {name: test-nan-global, params: {thresholds: global}}]")
    assert not summary.ok
    rows = results.set_index("attack_name")
    assert rows.loc["loss", "status"] == "ok"
    assert rows.loc["test-nan-per-class", "status"] == "failed"
    assert rows.loc["test-nan-per-class", "error"] == (
        "attack failed: ValueError: attack 'test-nan-per-class' returned NaN thresholds: "
        "1 of its 10 per-class thresholds are NaN (were its shadow models' outputs finite?)")
    assert rows.loc["test-nan-global", "status"] == "failed"
    assert "its global threshold is NaN" in rows.loc["test-nan-global", "error"]
    assert len(list((tmp_path / "out" / "store" / "attacks").glob("*.npz"))) == 1  # the loss attack's only
    ok = results[results["status"] == "ok"]
    assert np.isfinite(ok[["auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "balanced_acc"]].to_numpy()).all()


def test_an_ok_row_never_carries_a_non_finite_auc(write_grid, registry, tmp_path, monkeypatch):
    import dataclasses

    import mibench.report.rows

    real = mibench.report.rows.attack_metrics
    monkeypatch.setattr(mibench.report.rows, "attack_metrics",
                        lambda *a: dataclasses.replace(real(*a), auc=float("nan")))
    summary, results = run(write_grid, registry, tmp_path / "out", attacks="[loss]")
    assert not summary.ok
    assert results["status"].eq("failed").all()
    assert results["error"].iloc[0] == "attack failed: AssertionError: non-finite metrics auc=nan"
