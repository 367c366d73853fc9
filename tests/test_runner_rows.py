"""Rows from records and stored scores alone (no model, no training): the RowBuilder and each protocol's rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mibench.config.resolve import load_grid
from mibench.engine.metrics import attack_metrics
from mibench.engine.plan import build_plan, predict_key
from mibench.engine.records import AttackRecord, PredictRecord
from mibench.engine.store import Store
from mibench.execution.executor import JobResult
from mibench.report.rows import RowBuilder
from tests.grids import digits_grid


def builder_for(write_grid, registry, tmp_path, grid, fail=()):
    """A plan of ``grid`` whose attack jobs 'finished' with seeded scores, and a RowBuilder over them."""
    resolved = load_grid(write_grid(digits_grid(**grid)), registry)
    plan = build_plan(resolved)
    store = Store(tmp_path / "store")
    results: dict[str, JobResult] = {}
    rng = np.random.default_rng(0)
    for i, job in enumerate(plan.attack_jobs):
        if job.key in fail or i in fail:
            results[job.key] = JobResult(job.key, "attack", False, error="attack failed: ValueError: boom")
        else:
            membership = rng.random(200) < 0.5
            scores = membership + rng.normal(size=200)
            store.save_arrays("attacks", job.output_key, scores=scores, membership=membership,
                              labels=rng.integers(0, 10, 200), indices=np.arange(200), thresholds=np.asarray(0.5))
            store.save_json("attacks", job.output_key, {"threshold_mode": "global", "info": {},
                                                        "has_thresholds": True})
            results[job.key] = JobResult(job.key, "attack", True, AttackRecord(
                job.output_key, "global", int(membership.sum()), int((~membership).sum())))
        target = predict_key(job.target)
        results.setdefault(target, JobResult(target, "predict", True, PredictRecord(
            job.target.key, "logits", train_acc=0.9 + i / 1000, test_acc=0.8, info={"note": i})))
    return plan, RowBuilder(resolved, {"mibench": "x"}, store, results), store


def test_a_paper_cell_has_one_row_per_attack_with_the_metrics_of_its_stored_scores(write_grid, registry, tmp_path):
    plan, builder, store = builder_for(write_grid, registry, tmp_path, {"attacks": "[loss, entropy]"})
    (cell,) = plan.cells
    rows = builder.cell_rows(cell)
    assert rows.per_target == [] and [r.attack for r in rows.rows] == ["loss", "entropy"]
    for row, job in zip(rows.rows, cell.attacks):
        out = store.load_arrays("attacks", job.output_key)
        want = attack_metrics(out["membership"], out["scores"], out["labels"], 0.5, out["indices"]).as_row()
        assert (row.auc, row.balanced_acc, row.tpr_at_1pct_fpr) == (want["auc"], want["balanced_acc"],
                                                                    want["tpr_at_1pct_fpr"])
        assert row.status == "ok" and row.protocol == "paper" and row.threshold_mode == "global"
        assert row.attack_output == job.output_key and row.target_model == job.target.key
        assert row.train_acc == pytest.approx(0.9) and json.loads(row.defense_info) == {"note": 0}
    assert builder.failures == []


def test_a_failed_attack_is_a_failed_row_and_one_line_among_the_failures(write_grid, registry, tmp_path):
    plan, builder, _ = builder_for(write_grid, registry, tmp_path, {"attacks": "[loss, entropy]"}, fail={1})
    rows = builder.cell_rows(plan.cells[0]).rows
    assert [r.status for r in rows] == ["ok", "failed"] and math.isnan(rows[1].auc)
    assert builder.failures == [f"entropy on {plan.cells[0].label()}: attack failed: ValueError: boom"]


def test_the_config_hash_follows_the_config_not_the_scores(write_grid, registry, tmp_path):
    plan, builder, _ = builder_for(write_grid, registry, tmp_path / "a", {"attacks": "[loss, entropy]"})
    first = [r.config_hash for r in builder.cell_rows(plan.cells[0]).rows]
    assert len(set(first)) == 2  # two attacks, two configs
    plan, builder, _ = builder_for(write_grid, registry, tmp_path / "b", {"attacks": "[loss, entropy]"}, fail={0})
    assert [r.config_hash for r in builder.cell_rows(plan.cells[0]).rows] == first  # a failure changes no config
    plan, builder, _ = builder_for(write_grid, registry, tmp_path / "c", {"attacks": "[loss, entropy]", "epochs": 3})
    assert not set(r.config_hash for r in builder.cell_rows(plan.cells[0]).rows) & set(first)


def test_a_pool_cell_pools_its_targets_and_reports_each(write_grid, registry, tmp_path):
    grid = {"attacks": "[loss]", "extra": "protocol: pool\npool: {models: 4}\n"}
    plan, builder, store = builder_for(write_grid, registry, tmp_path, grid)
    (cell,) = plan.cells
    rows = builder.cell_rows(cell)
    (pooled,) = rows.rows
    assert len(rows.per_target) == 4 and all(r.targets == 1 for r in rows.per_target)
    assert pooled.targets == 4 and pooled.protocol == "pool" and pooled.target_model.startswith("pool:")
    aucs = [r.auc for r in rows.per_target]
    assert pooled.auc_target_mean == pytest.approx(np.mean(aucs)) and pooled.auc_target_std == pytest.approx(
        np.std(aucs, ddof=1))
    outs = [store.load_arrays("attacks", j.output_key) for j in cell.attacks]
    want = attack_metrics(np.concatenate([o["membership"] for o in outs]), np.concatenate([o["scores"] for o in outs]),
                          None, None)
    assert pooled.auc == want.auc and pooled.n_members == sum(int(o["membership"].sum()) for o in outs)
    failed = builder_for(write_grid, registry, tmp_path / "f", grid, fail={2})[1]
    row = failed.cell_rows(cell).rows[0]
    assert row.status == "failed" and row.error == "1 of 4 targets failed; first: attack failed: ValueError: boom"
