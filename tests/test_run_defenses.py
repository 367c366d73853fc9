"""AdvReg, DMP and DP-SGD end to end on digits: targets and adaptive shadows, attacks, rows."""

import json

import numpy as np
import pandas as pd
import torch

from mibench.config.resolve import load_grid
from mibench.engine.access import open_model
from mibench.engine.models import ModelRef
from mibench.engine.plan import build_plan
from mibench.runner import Runner
from mibench.engine.store import Store
from tests.conftest import DIGITS_GRID
import pytest

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = (
    DIGITS_GRID.replace("defenses: [ce]", "defenses: [advreg, dmp, {name: dp-sgd, params: {noise_multiplier: 0.8}}]")
    .replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss, m-entropy]")
    .replace("epochs: 12", "epochs: 6")
    .replace("count: 2", "count: 1")
)


def test_reference_and_private_defenses_run_end_to_end(write_grid, registry, tmp_path):
    resolved = load_grid(write_grid(GRID), registry)
    summary = Runner(resolved, registry, tmp_path / "run", log=lambda _: None).run()
    assert summary.ok
    assert len(summary.trained) == 6  # a target and an adaptive shadow per defense
    rows = pd.read_csv(tmp_path / "run" / "results.csv").set_index(["defense", "attack"])
    assert (rows["status"] == "ok").all() and rows["auc"].between(0, 1).all()
    assert rows["shadow_training"].eq("adaptive").all() and rows["n_nonmembers"].eq(449).all()
    # 450 target members; AdvReg and DMP pay 20% of them for their reference set
    members = rows["n_members"].groupby(level="defense").first()
    assert members.to_dict() == {"advreg": 360, "dmp": 360, "dp-sgd(noise_multiplier=0.8)": 450}
    info = {d: json.loads(rows.loc[(d, "loss"), "defense_info"]) for d in members.index}
    # DMP keeps half of each predicted class of its 90 reference samples (rounded per class)
    assert info["advreg"]["reference_size"] == 90 and abs(info["dmp"]["distilled"] - 45) <= 5
    dp = info["dp-sgd(noise_multiplier=0.8)"]
    assert dp["epsilon"] > 0 and dp["noise_multiplier"] == 0.8
    test_acc = rows["test_acc"].groupby(level="defense").first()
    assert test_acc.drop("dmp").gt(0.3).all()
    # DMP's student takes 6 steps on ~45 soft-labelled samples here: above chance (0.1), not more
    assert test_acc["dmp"] > 0.2

    # every shadow was trained by the target's own defense, on its own split
    records = [json.loads(p.read_text()) for p in (tmp_path / "run" / "store" / "models").glob("*.json")]
    shadows = {r["identity"]["defense"]["name"]: r for r in records if r["identity"]["role"] == "shadow-0"}
    assert set(shadows) == {"advreg", "dmp", "dp-sgd"}
    assert shadows["advreg"]["members"] == shadows["dmp"]["members"] == 449 - 90
    assert shadows["dp-sgd"]["members"] == 449 and shadows["dp-sgd"]["info"]["epsilon"] > 0

    # attacks see AdvReg's carved-out reference set as neither members nor non-members
    store = Store(tmp_path / "run" / "store")
    job = next(j for j in build_plan(resolved).train_jobs.values()
               if str(j.role) == "shadow-0" and j.defense.name == "advreg")
    access = open_model(store, ModelRef(job), torch.device("cpu"))
    assert len(access.excluded) == 90 and len(access.members) == 449 - 90
    assert np.intersect1d(access.excluded, np.r_[access.members, access.nonmembers]).size == 0


def test_dp_sgd_with_converted_batch_norm_is_attacked_end_to_end(write_grid, registry, tmp_path):
    text = (
        DIGITS_GRID.replace("defenses: [ce]", "defenses: [{name: dp-sgd, params: {fix_batchnorm: true}}]")
        .replace("[{name: mlp, params: {hidden: [64]}}]",
                 "[{name: small-cnn, params: {channels: [4], hidden: 16, norm: batch}}]")
        .replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss]")
        .replace("epochs: 12", "epochs: 2")
        .replace("count: 2", "count: 1")
    )
    summary = Runner(load_grid(write_grid(text), registry), registry, tmp_path / "bn", log=lambda _: None).run()
    assert summary.ok  # the engine rebuilt the group-norm network to predict and attack
    (row,) = pd.read_csv(tmp_path / "bn" / "results.csv").to_dict("records")
    assert json.loads(row["defense_info"])["converted"] == "batchnorm->groupnorm"
    assert 0 <= row["auc"] <= 1 and row["train_acc"] > 0.1
