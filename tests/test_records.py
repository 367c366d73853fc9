"""Typed job records (issue 16, section 2): a finished rerun runs nothing and opens no model;
a model is run over its pool once, whatever reads its logits."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
import torch

import mibench.engine.access
from mibench.config.resolve import load_grid
from mibench.engine.jobs import JobContext, SplitsJob
from mibench.engine.records import AttackRecord, PredictRecord, TrainRecord, load_record, save_record
from mibench.engine.store import Store, stable_hash
from mibench.execution.executor import STORE
from mibench.runner import Runner
from tests.grids import digits_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = digits_grid(epochs=2, attacks="[loss, lira, rmia]")


def run(write_grid, registry, out):
    results = []
    runner = Runner(load_grid(write_grid(GRID), registry), registry, out, log=lambda _: None)
    real = runner._record
    runner._record = lambda result: (results.append(result), real(result))
    return runner.run(), results


@pytest.fixture
def opened(monkeypatch):
    """Models opened (ModelAccess built, weights loaded) and forward passes over pool samples, by model key."""
    opens: Counter = Counter()
    forwards: Counter = Counter()
    real_init = mibench.engine.access.ModelAccess.__init__
    real_predict = mibench.engine.access.predict_logits

    def init(self, store, ref, device):
        opens[ref.key] += 1
        real_init(self, store, ref, device)

    def predict(network, pool, indices, device, batch_size):
        forwards[network._mibench_key] += len(indices)
        return real_predict(network, pool, indices, device, batch_size)

    real_network = mibench.engine.access.ModelAccess._network

    def network(self):
        module = real_network(self)
        module._mibench_key = self.key
        return module

    monkeypatch.setattr(mibench.engine.access.ModelAccess, "__init__", init)
    monkeypatch.setattr(mibench.engine.access.ModelAccess, "_network", network)
    monkeypatch.setattr(mibench.engine.access, "predict_logits", predict)
    return opens, forwards


def test_records_round_trip_through_the_store(tmp_path):
    store = Store(tmp_path)
    for record in (TrainRecord(("a", "b"), 1.5, 2, True), PredictRecord("m", "l", 0.9, 0.8, {"epsilon": 3.0}),
                   AttackRecord("o", "per-class", 10, 12, {"calibration_samples": 5})):
        save_record(store, f"{record.kind}:k", record)
        assert load_record(store, f"{record.kind}:k") == record
    assert load_record(store, "attack:missing") is None


def test_a_finished_rerun_runs_no_job_and_opens_no_model(write_grid, registry, tmp_path, opened):
    opens, forwards = opened
    first, _ = run(write_grid, registry, tmp_path / "run")
    assert first.ok and opens
    expected = pd.read_csv(tmp_path / "run" / "results.csv")
    opens.clear()
    forwards.clear()
    again, results = run(write_grid, registry, tmp_path / "run")
    assert again.ok and again.trained == []
    assert {r.worker for r in results} == {STORE}  # every job was read from the store
    assert not opens and not forwards  # the rows were built from records and stored scores alone
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "results.csv"), expected)


def test_each_model_is_run_over_its_pool_once(write_grid, registry, tmp_path, opened):
    """The target and the shadows are each predicted once, on every pool sample: accuracies, the
    target view and the reference tables of lira and rmia (and the shadows' calibration) read rows
    of that one array."""
    _, forwards = opened
    summary, _ = run(write_grid, registry, tmp_path / "run")
    assert summary.ok
    pool = 1797  # digits
    assert len(forwards) == 3  # the target and 2 shadows
    assert set(forwards.values()) == {pool}


def test_a_damaged_record_runs_its_job_again(write_grid, registry, tmp_path):
    run(write_grid, registry, tmp_path / "run")
    expected = pd.read_csv(tmp_path / "run" / "results.csv")
    victim = sorted((tmp_path / "run" / "store" / "records").glob("attack-*.json"))[0]
    victim.write_text("{not json")
    summary, results = run(write_grid, registry, tmp_path / "run")
    assert summary.ok
    assert sum(r.worker != STORE for r in results) == 1  # the one attack whose record was damaged
    assert victim.is_file()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "results.csv"), expected)


def test_the_splits_key_covers_every_input_of_its_output(tmp_path, registry):
    """Each field of a SplitsJob is an input of its key: change one whose output changes, the key changes."""
    from mibench.config.plugin_config import PluginConfig
    from mibench.engine.protocols.paper import PaperProtocol
    from mibench.engine.protocols.pool import PoolProtocol

    info = registry.get("dataset", "digits")
    dataset = PluginConfig(info, info.cls.Params(), (), 0)
    base = SplitsJob(dataset, 0, PaperProtocol(2))
    variants = [SplitsJob(dataset, 1, PaperProtocol(2)), SplitsJob(dataset, 0, PaperProtocol(3)),
                SplitsJob(dataset, 0, PoolProtocol(4, 0.5))]
    store = Store(tmp_path)

    def output(job):
        job.run(JobContext(store, torch.device("cpu")))
        arrays = store.load_arrays("splits", job.store_key)
        return {k: v.tobytes() for k, v in arrays.items()}

    reference = output(base)
    for variant in variants:
        assert output(variant) != reference
        assert variant.key != base.key, variant
    assert base.key == "splits:" + stable_hash(base.inputs())  # the key is built from the declared inputs alone


def test_a_prediction_record_of_older_prediction_code_is_not_done(write_grid, registry, tmp_path):
    """Predictions are keyed by the prediction code path: a record naming logits made under another
    key (the code changed since) is not done, so accuracies are never read from old logits."""
    from mibench.engine.plan import build_plan

    run(write_grid, registry, tmp_path / "run")
    store = Store(tmp_path / "run" / "store")
    job = next(j for j in build_plan(load_grid(write_grid(GRID), registry)).jobs.values() if j.kind == "predict")
    record = job.stored(store)
    assert isinstance(record, PredictRecord)
    store.save_torch("predictions", "older-code", store.load_torch("predictions", record.logits))
    save_record(store, job.key, PredictRecord(record.model_key, "older-code", record.train_acc, record.test_acc))
    assert job.stored(store) is None
