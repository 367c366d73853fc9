"""Each threshold attack's score against a hand computation from REFERENCE §4."""

import decimal
import math

import numpy as np
import pytest
import torch

from mibench.sdk import softmax_entropy
from mibench_plugins.attacks.confidence import EntropyAttack, LossAttack, ModifiedEntropyAttack, modified_entropy

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
    got = cls().signal(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS))
    want = [by_hand(kind, row, y) for row, y in zip(LOGITS, LABELS)]
    assert got.tolist() == pytest.approx(want, rel=1e-9)


def test_first_row_by_hand_numbers():
    # p = softmax(2, 0, -1) = (0.843795, 0.114195, 0.042010)
    logits = torch.tensor([LOGITS[0]], dtype=torch.float64)
    y = torch.tensor([0])
    assert LossAttack().signal(logits, y).item() == pytest.approx(-0.169846, abs=1e-6)
    assert EntropyAttack().signal(logits, y).item() == pytest.approx(-0.524267, abs=1e-6)
    assert ModifiedEntropyAttack().signal(logits, y).item() == pytest.approx(-0.042181, abs=1e-6)


def test_saturated_probabilities_stay_finite():
    logits = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float64)
    for cls in (EntropyAttack, ModifiedEntropyAttack):
        for y in (0, 1):
            assert np.isfinite(cls().signal(logits, torch.tensor([y])).numpy()).all()


def test_a_confident_member_scores_higher_than_an_unsure_nonmember():
    confident = torch.tensor([[8.0, 0.0, 0.0]], dtype=torch.float64)
    unsure = torch.tensor([[0.2, 0.1, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    for cls in (LossAttack, EntropyAttack, ModifiedEntropyAttack):
        assert cls().signal(confident, y).item() > cls().signal(unsure, y).item()


# --- precision on overfit outputs (logit gaps where 1 - p_y rounds to 0 in float64) ---

SCORERS = {"loss": LossAttack, "entropy": EntropyAttack, "m-entropy": ModifiedEntropyAttack}


def exact_score(kind, row, y):
    """The §4 score of one row in decimal arithmetic with 60 digits to spare (1 - p_i as the sum of the others).

    The spare digits are on top of the logit range (a gap of 300 puts p_y at 1 - 5e-131,
    which must not round to 1 before its log is taken)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60 + math.ceil(max(row) - min(row))
        g = [decimal.Decimal(v) for v in row]  # exact binary values of the float logits
        top = max(g)
        e = [(gi - top).exp() for gi in g]
        z = sum(e)
        p = [ei / z for ei in e]
        rest = [sum(e[:i] + e[i + 1 :]) / z for i in range(len(e))]  # 1 - p_i, from the other classes
        if kind == "loss":
            return p[y].ln()
        if kind == "entropy":
            return sum(pi * pi.ln() for pi in p)
        mentr = -rest[y] * p[y].ln() - sum(p[i] * rest[i].ln() for i in range(len(p)) if i != y)
        return -mentr


def naive_scores(kind, logits, labels):
    """The float formulas the attacks used before they went to log space (fine in the ordinary range)."""
    p = logits.softmax(1)
    if kind == "loss":
        return -torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    if kind == "entropy":
        log_p = logits.log_softmax(1)
        return (log_p.exp() * log_p).sum(1)
    p_y = p.gather(1, labels.view(-1, 1)).squeeze(1)
    others = -p * (1 - p).log()
    return -(-(1 - p_y) * p_y.log() + others.sum(1) - others.gather(1, labels.view(-1, 1)).squeeze(1))


def overfit_cases():
    """Rows [gap + a, b, c, d] for gaps 20, 25, ..., 60: the true class first (members) or second (non-members)."""
    tails = [
        (0.0, -1.0, -2.0),
        (0.0, -1.0, -3.0),
        (0.0, -2.0, -3.0),
        (0.0, -1.0, -2.5),
        (-0.5, -1.0, -2.0),
        (0.5, -1.5, -2.0),
    ]
    rows, labels = [], []
    for gap in range(20, 61, 5):
        for tail in tails:
            for y in (0, 1):
                rows.append([float(gap) + tail[0], *tail])
                labels.append(y)
    return rows, labels


def test_modified_entropy_by_hand_on_exact_probabilities():
    # logits log(6, 3, 1) give p = (0.6, 0.3, 0.1) exactly, so the formula reads off directly:
    # Mentr(p, 0) = -0.4 log 0.6 - 0.3 log 0.7 - 0.1 log 0.9 = 0.3218688...
    # Mentr(p, 2) = -0.9 log 0.1 - 0.6 log 0.4 - 0.3 log 0.7 = 2.7291035...
    logits = torch.tensor([[math.log(6), math.log(3), 0.0]] * 2, dtype=torch.float64)
    got = modified_entropy(logits, torch.tensor([0, 2])).tolist()
    want = [
        -0.4 * math.log(0.6) - 0.3 * math.log(0.7) - 0.1 * math.log(0.9),
        -0.9 * math.log(0.1) - 0.6 * math.log(0.4) - 0.3 * math.log(0.7),
    ]
    assert got == pytest.approx(want, rel=1e-12, abs=0)
    assert want == pytest.approx([0.3218688, 2.7291035], abs=1e-7)


@pytest.mark.parametrize("kind", ["loss", "entropy", "m-entropy"])
def test_overfit_scores_match_high_precision_and_tie_only_where_exact_ties(kind):
    rows, labels = overfit_cases()
    got = SCORERS[kind]().signal(torch.tensor(rows, dtype=torch.float64), torch.tensor(labels)).tolist()
    want = [exact_score(kind, row, y) for row, y in zip(rows, labels)]
    for g, w, row, y in zip(got, want, rows, labels):
        assert math.isfinite(g)
        assert g == pytest.approx(float(w), rel=1e-9, abs=0), (row, y)
    # Wherever the exact scores differ by more than float64 can resolve (1e-12 relative, some
    # thousand ulps), the float scores must differ too, in the same order. (Below that the
    # exact values themselves round to one double: a non-member's loss at gap 35 is
    # -35 - 1e-15 or so, whatever its other logits.)
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            if abs(want[a] - want[b]) > decimal.Decimal("1e-12") * max(abs(want[a]), abs(want[b])):
                assert (got[a] > got[b]) == (want[a] > want[b]), (rows[a], labels[a], rows[b], labels[b])
                assert got[a] != got[b]


@pytest.mark.parametrize("kind", ["loss", "entropy", "m-entropy"])
def test_two_classes_match_high_precision(kind):
    rows = [[float(gap), 0.0] for gap in (0.5, 3, 20, 40, 60, 300)] + [[0.0, 45.0], [1.5, -37.0]]
    for y in (0, 1):
        got = SCORERS[kind]().signal(torch.tensor(rows, dtype=torch.float64), torch.tensor([y] * len(rows))).tolist()
        want = [float(exact_score(kind, row, y)) for row in rows]
        assert got == pytest.approx(want, rel=1e-9, abs=0)


@pytest.mark.parametrize("kind", ["loss", "entropy", "m-entropy"])
def test_ordinary_range_equals_the_plain_formula(kind):
    gen = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(500, 10, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 10, (500,), generator=gen)
    got = SCORERS[kind]().signal(logits, labels)
    want = naive_scores(kind, logits, labels)
    assert torch.allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_extreme_gaps_stay_finite(dtype):
    cases = [
        [1000.0, 0.0, -1.0],
        [1000.0, -1000.0, 0.0],
        [-1000.0, 1000.0, 0.0],
        [0.0, 0.0, 1000.0],
        [500.0, 500.0, -500.0],
    ]
    logits = torch.tensor(cases, dtype=dtype)
    for y in range(3):
        labels = torch.full((len(cases),), y)
        for cls in SCORERS.values():
            assert torch.isfinite(cls().signal(logits, labels)).all(), (cls.name, y)
    two = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], dtype=dtype)
    for cls in SCORERS.values():
        assert torch.isfinite(cls().signal(two, torch.tensor([0, 0]))).all()
    # the true value is -Mentr ~ -(1 - p_y)^2 ~ -exp(-2000): 0 in float64, and never positive
    assert ModifiedEntropyAttack().signal(logits[:1], torch.tensor([0])).item() == 0.0


def test_softmax_entropy_keeps_its_gradient():
    # defenses train with it (entropy regularisation): values and gradients as the plain form, finite when saturated
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    softmax_entropy(x).sum().backward()
    y = x.detach().clone().requires_grad_(True)
    log_p = y.log_softmax(1)
    (-(log_p.exp() * log_p).sum(1)).sum().backward()
    assert torch.allclose(x.grad, y.grad, rtol=1e-10, atol=1e-14)
    z = torch.tensor([[100.0, 0.0, -100.0], [0.0, 0.0, 0.0]], requires_grad=True)
    softmax_entropy(z).sum().backward()
    assert torch.isfinite(z.grad).all()
