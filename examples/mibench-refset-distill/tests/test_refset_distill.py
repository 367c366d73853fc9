"""The reference-set distillation defense, tested through mibench.sdk.testing."""

import json

import mibench_refset_distill
from mibench.sdk.testing import tiny_grid


def test_its_members_leave_out_the_reference_set(mibench_run):
    run = mibench_run(tiny_grid(defenses=["ce", {"name": "refset-distill", "params": {"reference_fraction": 0.2}}]),
                      plugins=[mibench_refset_distill])
    assert run.ok, run.failures
    plain, distilled = run.row(defense="ce"), run.row(defense="refset-distill")  # 0.2 is its default
    info = json.loads(distilled["defense_info"])
    assert info["reference_size"] == round(0.2 * plain["n_members"])  # carved out of the training split ...
    assert distilled["n_members"] == plain["n_members"] - info["reference_size"]  # ... and so not a member
    assert distilled["n_nonmembers"] == plain["n_nonmembers"]
