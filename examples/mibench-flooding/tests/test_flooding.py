"""The flooding defense, tested as its authors would: a tiny grid through mibench.sdk.testing."""

import math

import torch

import mibench_flooding
from mibench.sdk.testing import tiny_grid


def test_the_flood_level_is_kept_by_hand():
    loss = mibench_flooding.FloodingLoss(b=0.5)
    logits, labels = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    ce = math.log(1 + math.exp(-2.0))  # 0.127, below the flood level
    assert math.isclose(loss(logits, logits, labels, 1).item(), abs(ce - 0.5) + 0.5, rel_tol=1e-6)  # 0.873


def test_flooding_trains_and_is_attacked(mibench_run):
    run = mibench_run(tiny_grid(defenses=["ce", {"name": "flooding", "params": {"b": 0.3}}]),
                      plugins=[mibench_flooding])
    assert run.ok, run.failures
    flooded, plain = run.row(defense="flooding(b=0.3)"), run.row(defense="ce")
    assert flooded["status"] == "ok" and 0.0 <= flooded["auc"] <= 1.0
    assert flooded["train_acc"] <= plain["train_acc"] + 0.05  # the flood keeps training loss up, not down
