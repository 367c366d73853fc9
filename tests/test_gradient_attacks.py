"""Grad-x and Grad-w: batched equals the anchors' one-sample-at-a-time loop; a planted leak is found."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mibench.sdk.batches import model_inputs
from mibench.sdk.dataset import Pool
from mibench.engine.metrics import attack_metrics
from mibench_plugins.architectures.small import MLPNet, SmallCNNNet
from mibench_plugins.attacks.gradient import GradWAttack, GradXAttack, input_gradient_norms
from mibench_plugins.datasets.digits import Digits
from tests.fakes import CPU, FakeAccess, context, membership


@pytest.fixture(scope="module")
def digits():
    return Digits().load_pool()


def cnn_with_batch_norm():
    torch.manual_seed(0)
    model = SmallCNNNet((1, 8, 8), [8, 16], 32, 10, norm="batch")
    model.train()
    with torch.no_grad():  # move the running statistics away from (0, 1)
        model(torch.randn(256, 1, 8, 8) * 2 + 1)
    return model.eval()


def mlp_with_dropout():
    torch.manual_seed(1)
    return MLPNet(64, [32, 16], 10, dropout=0.5).eval()


MODELS = {"small-cnn+bn": cnn_with_batch_norm, "mlp+dropout": mlp_with_dropout}


def loop(model, pool, indices, wrt):
    """The anchors' way: eval mode, one sample at a time, backward, norm of the gradient."""
    model.eval()
    norms = []
    for i in indices:
        x = model_inputs(pool, np.array([i]), CPU).requires_grad_(True)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x)[0], pool.labels[[int(i)]]).backward()
        grads = [x.grad] if wrt == "x" else [p.grad for p in model.parameters()]
        norms.append(torch.sqrt(sum(g.pow(2).sum() for g in grads)).item())
    return np.array(norms)


@pytest.mark.parametrize("arch", MODELS)
@pytest.mark.parametrize("attack,wrt", [(GradXAttack(GradXAttack.Params(batch_size=16)), "x"),
                                        (GradWAttack(GradWAttack.Params(chunk_size=16)), "w")])
def test_batched_equals_the_per_sample_loop(digits, arch, attack, wrt):
    model = MODELS[arch]()
    indices = np.arange(100, 140)  # 40 samples: two full batches of 16 and a partial one
    batched = -attack.model_signal(FakeAccess(digits, [], [], module=model), indices)
    want = loop(model, digits, indices, wrt)
    assert want.min() > 0
    np.testing.assert_allclose(batched, want, rtol=1e-5)


def test_input_gradients_refuse_a_model_in_training_mode(digits):
    model = mlp_with_dropout().train()
    with pytest.raises(ValueError, match="eval mode"):
        input_gradient_norms(model, model_inputs(digits, np.arange(4), CPU), digits.labels[:4])


def overfit(pool, members, steps=300):
    """An MLP driven to near-zero loss on ``members``: their gradients all but vanish."""
    torch.manual_seed(0)
    model = MLPNet(64, [64], 10, 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = model_inputs(pool, members, CPU), pool.labels[torch.as_tensor(members)]
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x)[0], y).backward()
        optimizer.step()
    return model.eval()


def auc(attack, model, pool, members, nonmembers):
    target = FakeAccess(pool, members, nonmembers, module=model)
    ctx = context(target, [])
    out = attack.run(ctx)
    return attack_metrics(membership(ctx, target), out.scores, target.labels(ctx.eval_indices), None).auc


@pytest.fixture(scope="module")
def noise():
    """600 random 8x8 images with random labels: nothing to generalise from, only to memorise."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 17, (600, 1, 8, 8), generator=gen, dtype=torch.uint8)
    return Pool(images, torch.randint(0, 10, (600,), generator=gen), 10, (0.5,), (0.3,), scale=16.0)


@pytest.mark.parametrize("attack", [GradXAttack(), GradWAttack()], ids=["gradx-l2", "gradw-l2"])
def test_a_planted_leak_is_found(noise, attack):
    members, nonmembers = np.arange(30), np.arange(30, 60)
    assert auc(attack, overfit(noise, members), noise, members, nonmembers) > 0.95


@pytest.mark.parametrize("attack", [GradXAttack(), GradWAttack()], ids=["gradx-l2", "gradw-l2"])
def test_a_model_that_ignores_membership_gives_a_coin_flip(noise, attack):
    torch.manual_seed(2)
    untrained = MLPNet(64, [64], 10, 0.0).eval()  # trained on nothing: members mean nothing to it
    members, nonmembers = np.arange(0, 600, 2), np.arange(1, 600, 2)
    assert auc(attack, untrained, noise, members, nonmembers) == pytest.approx(0.5, abs=0.08)
