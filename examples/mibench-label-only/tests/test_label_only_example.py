"""The example label-only attack, tested through mibench.sdk.testing: it counts its queries."""

import mibench_label_only
from mibench.sdk.testing import tiny_grid


def test_it_scores_every_sample_from_its_queries(mibench_run):
    run = mibench_run(tiny_grid(attacks=["label-only-aug"]), plugins=[mibench_label_only])
    assert run.ok, run.failures
    row = run.row(attack="label-only-aug")
    evaluated = row["n_members"] + row["n_nonmembers"]
    info = run.attack_info(row)
    assert info["copies"] == mibench_label_only.COPIES
    assert info["target_queries"] == mibench_label_only.COPIES * evaluated
    assert 0.0 <= row["auc"] <= 1.0
