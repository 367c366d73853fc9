"""Loss-based defenses against values worked out by hand from REFERENCE §3, branch by branch.

The reference values below are computed in plain Python (math, lists) straight from
the formulas, independently of the torch code under test.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from mibench.sdk.defense import ObjectiveSpec
from mibench_plugins.defenses.crl import CRL, CRLObjective, ImpRelaxLoss, RelaxedCenterLoss
from mibench_plugins.defenses.relaxloss import RelaxLoss
from mibench_plugins.defenses.simple import ConfidencePenalty, LabelSmoothing

G = [[2.0, 0.5, -1.0], [0.2, 0.1, 0.4]]  # logits, B=2, C=3
Y = [0, 1]
Q = [[1.0, 2.0], [-0.5, 0.5]]  # features, D=2
CENTERS = [[0.5, 1.0], [0.0, -1.0], [1.0, 1.0]]
SPEC = ObjectiveSpec(num_classes=3, feature_dim=2)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def scaled(v, tau):
    return [x / (1 + tau * norm(v)) for x in v]


def ce(row, y):
    return -math.log(softmax(row)[y])


def soft_ce(row, target):
    p = softmax(row)
    return -sum(ti * math.log(pi) for ti, pi in zip(target, p))


def flat_target(p_y, y, c=3):
    return [p_y if i == y else (1 - p_y) / (c - 1) for i in range(c)]


def mean(xs):
    return sum(xs) / len(xs)


# ----------------------------------------------------------------------------- RelaxLoss

def relaxloss_by_hand(alpha, epoch):
    ces = [ce(g, y) for g, y in zip(G, Y)]
    L = mean(ces)
    if epoch % 2 == 0:
        return abs(L - alpha), "abs"
    if L > alpha:
        return L, "ce"
    per = []
    for g, y, ci in zip(G, Y, ces):
        correct = max(range(3), key=lambda i: g[i]) == y
        per.append((0 if correct else 1) * soft_ce(g, flat_target(softmax(g)[y], y)) - ci)
    return mean(per), "flatten"


@pytest.mark.parametrize("alpha,epoch,branch", [(0.5, 2, "abs"), (2.0, 2, "abs"), (0.1, 1, "ce"), (2.0, 1, "flatten")])
def test_relaxloss_branches(alpha, epoch, branch):
    want, taken = relaxloss_by_hand(alpha, epoch)
    assert taken == branch
    obj = RelaxLoss(RelaxLoss.Params(alpha=alpha)).objective(SPEC)
    assert obj(t(G), None, torch.tensor(Y), epoch).item() == pytest.approx(want, rel=1e-10)


def test_relaxloss_flatten_by_hand_numbers():
    # Worked on paper (6 digits): sample 0, p = (.785608, .175290, .039113), correct:
    # contributes -CE_0 = -.241294. Sample 1, p = (.319873, .289433, .390694), wrong
    # (argmax 2, y = 1): t = (.355283, .289433, .355283), softCE = 1.097717, CE = 1.239832,
    # contributes -.142115. Mean: -.191705.
    obj = RelaxLoss(RelaxLoss.Params(alpha=2.0)).objective(SPEC)
    assert obj(t(G), None, torch.tensor(Y), 1).item() == pytest.approx(-0.191705, abs=2e-5)


# ----------------------------------------------------------------------------------- CRL

def imp_by_hand(alpha, epoch, tau):
    gn = [scaled(g, tau) for g in G]
    lce = mean([ce(g, y) for g, y in zip(gn, Y)])
    if epoch % 2 == 0:
        return abs(lce - alpha), "abs"
    if lce > alpha:
        return lce, "lce"
    return mean([soft_ce(g2, flat_target(softmax(g)[y], y)) for g, g2, y in zip(G, gn, Y)]), "soft"


def rcl_by_hand(alpha, epoch, tau):
    qn = [scaled(q, tau) for q in Q]
    cn = [scaled(CENTERS[y], tau) for y in Y]
    dist = [sum((a - b) ** 2 for a, b in zip(q, c)) for q, c in zip(qn, cn)]
    lct = sum(dist) / (2 * len(Y))
    if epoch % 2 == 0:
        return abs(lct - alpha), "abs"
    if lct > alpha:
        return lct, "ct"
    p_y = [softmax(g)[y] for g, y in zip(G, Y)]
    push = sum(p * d + (1 - p) * sum(x * x for x in q) for p, d, q in zip(p_y, dist, qn))
    return push / (2 * len(Y)), "push"


def crl_objective(**params):
    obj = CRLObjective(CRL.Params(**params), SPEC)
    with torch.no_grad():
        obj.centers.copy_(t(CENTERS).float())
    return obj.double()


@pytest.mark.parametrize(
    "alpha_rce,alpha_rcl,epoch,branches",
    [
        (0.5, 0.05, 2, ("abs", "abs")),
        (0.3, 0.01, 1, ("lce", "ct")),
        (3.0, 1.0, 1, ("soft", "push")),
        (0.3, 1.0, 1, ("lce", "push")),
        (3.0, 0.01, 1, ("soft", "ct")),
    ],
)
def test_crl_loss_in_every_branch(alpha_rce, alpha_rcl, epoch, branches):
    tau_rce, tau_rcl, lam = 0.5, 0.8, 0.7
    rce, b1 = imp_by_hand(alpha_rce, epoch, tau_rce)
    rcl, b2 = rcl_by_hand(alpha_rcl, epoch, tau_rcl)
    assert (b1, b2) == branches
    obj = crl_objective(alpha_rce=alpha_rce, alpha_rcl=alpha_rcl, tau_rce=tau_rce, tau_rcl=tau_rcl, lambda_=lam)
    got = obj(t(G), t(Q), torch.tensor(Y), epoch).item()
    assert got == pytest.approx(rce + lam * rcl, rel=1e-10)


def test_crl_by_hand_numbers():
    # Worked on paper, tau_rce = tau_rcl = 1, odd epoch, both losses above their alphas.
    # g_0 / (1 + 2.291288) -> CE .710950; g_1 / (1 + .458258) -> CE 1.193723; L_lce = .952337.
    # q_0 -> (.309017, .618034), c_0 -> (.236068, .472136): d^2 = .026608;
    # q_1 -> (-.292893, .292893), c_1 -> (0, -.5): d^2 = .714465; L_ct = .741073 / 4 = .185268.
    obj = crl_objective(alpha_rce=0.3, alpha_rcl=0.01, tau_rce=1.0, tau_rcl=1.0, lambda_=1.0)
    got = obj(t(G), t(Q), torch.tensor(Y), 1).item()
    assert got == pytest.approx(0.952337 + 0.185268, abs=2e-5)


def test_ablations_use_the_same_formulas():
    # imp-relaxloss: CRL without the center term
    want, _ = imp_by_hand(3.0, 1, 0.5)
    obj = ImpRelaxLoss(ImpRelaxLoss.Params(alpha_rce=3.0, tau_rce=0.5)).objective(SPEC).double()
    assert obj(t(G), t(Q), torch.tensor(Y), 1).item() == pytest.approx(want, rel=1e-10)
    assert not list(obj.parameters())
    # relaxed-center-loss: both parts with tau = 0 (no normalisation)
    rce, _ = imp_by_hand(0.3, 1, 0.0)
    rcl, _ = rcl_by_hand(1.0, 1, 0.0)
    obj = RelaxedCenterLoss(RelaxedCenterLoss.Params(alpha_rce=0.3, alpha_rcl=1.0, lambda_=0.5)).objective(SPEC)
    with torch.no_grad():
        obj.centers.copy_(t(CENTERS).float())
    obj = obj.double()
    assert obj(t(G), t(Q), torch.tensor(Y), 1).item() == pytest.approx(rce + 0.5 * rcl, rel=1e-10)


# ------------------------------------------------------------- label smoothing, penalty

def test_label_smoothing_by_hand():
    eps = 0.2
    want = mean([(1 - eps) * ce(g, y) + eps * mean([-math.log(p) for p in softmax(g)]) for g, y in zip(G, Y)])
    obj = LabelSmoothing(LabelSmoothing.Params(epsilon=eps)).objective(SPEC)
    assert obj(t(G), None, torch.tensor(Y), 1).item() == pytest.approx(want, rel=1e-10)


def test_confidence_penalty_by_hand():
    beta = 0.3
    ent = [-sum(p * math.log(p) for p in softmax(g)) for g in G]
    want = mean([ce(g, y) for g, y in zip(G, Y)]) - beta * mean(ent)
    obj = ConfidencePenalty(ConfidencePenalty.Params(beta=beta)).objective(SPEC)
    assert obj(t(G), None, torch.tensor(Y), 1).item() == pytest.approx(want, rel=1e-10)


# ------------------------------------------------------------------------- dynamics

def test_relaxation_ascends_below_alpha():
    """On an even epoch with CE < alpha, one SGD step on |CE - alpha| raises the CE."""
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    y = torch.randint(0, 3, (16,))
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():  # make the model fit well: CE well below alpha
        model.weight.copy_(torch.randn(3, 4))
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    before = F.cross_entropy(model(x), y).item()
    alpha = before + 1.0
    for defense in (RelaxLoss(RelaxLoss.Params(alpha=alpha)), ImpRelaxLoss(ImpRelaxLoss.Params(alpha_rce=alpha, tau_rce=0.0))):
        m = torch.nn.Linear(4, 3)
        m.load_state_dict(model.state_dict())
        obj = defense.objective(SPEC)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        loss = obj(m(x), None, y, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert F.cross_entropy(m(x), y).item() > before


def test_centers_move_with_their_own_lr_and_only_through_the_center_loss():
    lam, lr = 0.25, 0.01
    obj = CRLObjective(CRL.Params(lambda_=lam, center_lr=lr, alpha_rcl=0.01), SPEC)
    with torch.no_grad():
        obj.centers.copy_(torch.tensor(CENTERS))
    logits = torch.tensor(G, requires_grad=True)
    feats = torch.tensor(Q, requires_grad=True)
    labels = torch.tensor(Y)
    # gradient of the center loss alone, computed independently
    from mibench_plugins.defenses.crl import relaxed_center_loss

    c = torch.tensor(CENTERS, requires_grad=True)
    rcl = relaxed_center_loss(logits, feats, labels, c, 1, 0.01, 1.0, 1.0)
    (grad_rcl,) = torch.autograd.grad(rcl, c)
    assert grad_rcl.abs().sum() > 0

    before = obj.centers.detach().clone()
    obj.zero_grad()
    obj(logits, feats, labels, 1).backward()
    # the total loss gives the centers lambda * grad; step() divides lambda out
    assert torch.allclose(obj.centers.grad, lam * grad_rcl, atol=1e-7)
    obj.step()
    assert torch.allclose(obj.centers.detach(), before - lr * grad_rcl, atol=1e-7)
    # the centers are not model parameters: the model's optimiser never sees them
    assert [p.shape for p in obj.parameters()] == [torch.Size([3, 2])]
