"""Each threshold attack's score against a hand computation from REFERENCE §4."""

import math

import numpy as np
import pytest
import torch

from mibench_plugins.attacks.confidence import EntropyAttack, LossAttack, ModifiedEntropyAttack

LOGITS = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [-3.0, 4.0, 1.0]]
LABELS = [0, 0, 2]


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def by_hand(kind, row, y):
    p = softmax(row)
    if kind == "loss":
        return math.log(p[y])  # -CE
    if kind == "entropy":
        return sum(pi * math.log(pi) for pi in p)  # -H(p)
    mentr = -(1 - p[y]) * math.log(p[y]) - sum(p[i] * math.log(1 - p[i]) for i in range(len(p)) if i != y)
    return -mentr


@pytest.mark.parametrize(
    "cls,kind", [(LossAttack, "loss"), (EntropyAttack, "entropy"), (ModifiedEntropyAttack, "m-entropy")]
)
def test_scores_match_the_formula(cls, kind):
    got = cls().score(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS))
    want = [by_hand(kind, row, y) for row, y in zip(LOGITS, LABELS)]
    assert got.tolist() == pytest.approx(want, rel=1e-9)


def test_first_row_by_hand_numbers():
    # p = softmax(2, 0, -1) = (0.843795, 0.114195, 0.042010)
    logits = torch.tensor([LOGITS[0]], dtype=torch.float64)
    y = torch.tensor([0])
    assert LossAttack().score(logits, y).item() == pytest.approx(-0.169846, abs=1e-6)
    assert EntropyAttack().score(logits, y).item() == pytest.approx(-0.524267, abs=1e-6)
    assert ModifiedEntropyAttack().score(logits, y).item() == pytest.approx(-0.042181, abs=1e-6)


def test_saturated_probabilities_stay_finite():
    logits = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float64)
    for cls in (EntropyAttack, ModifiedEntropyAttack):
        for y in (0, 1):
            assert np.isfinite(cls().score(logits, torch.tensor([y])).numpy()).all()


def test_a_confident_member_scores_higher_than_an_unsure_nonmember():
    confident = torch.tensor([[8.0, 0.0, 0.0]], dtype=torch.float64)
    unsure = torch.tensor([[0.2, 0.1, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    for cls in (LossAttack, EntropyAttack, ModifiedEntropyAttack):
        assert cls().score(confident, y).item() > cls().score(unsure, y).item()
