"""The NN attack: its input encoding by hand, and every layer of its network really trains."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mibench_plugins.attacks.nn_attack import NNParams, attack_features, attack_network, train_attack_network


def test_input_encoding_by_hand():
    # softmax(2, 0, -1) = (0.843795, 0.114195, 0.042010), label 0; softmax(0, 0, 0) = 1/3 each, label 2
    got = attack_features(torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2]), 3)
    assert got.dtype == torch.float32 and got.shape == (2, 6)
    assert got[0].tolist() == pytest.approx([0.843795, 0.114195, 0.042010, 1, 0, 0], abs=1e-6)
    assert got[1].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0, 1], abs=1e-6)


def test_softmax_part_is_unsorted_and_sums_to_one():
    logits = torch.tensor([[-1.0, 3.0, 0.5, 2.0]])
    probs = attack_features(logits, torch.tensor([1]), 4)[0, :4]
    assert probs.argmax().item() == 1 and probs.sum().item() == pytest.approx(1.0)
    assert math.log(probs[1] / probs[3]) == pytest.approx(1.0, abs=1e-5)  # g_1 - g_3


def linear_layers(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_every_layer_trains():
    net = attack_network(8, [128, 64], dropout=0.2)
    layers = linear_layers(net)
    # The RelaxLoss bug kept hidden layers in a plain list: unregistered, invisible here, never trained.
    assert [(l.in_features, l.out_features) for l in layers] == [(8, 128), (128, 64), (64, 1)]
    before = [(l.weight.detach().clone(), l.bias.detach().clone()) for l in layers]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(512, 8, generator=gen)
    member = x[:, 0] > 0.5
    train_attack_network(net, x, member, NNParams(epochs=40), seed=0)
    for layer, (w, b) in zip(layers, before):
        assert not torch.equal(layer.weight, w) and not torch.equal(layer.bias, b)
    # and it learned the planted rule
    with torch.no_grad():
        assert ((net(x).squeeze(1) > 0) == member).float().mean() > 0.9


class PlainListNet(nn.Module):
    """The RelaxLoss layout, for contrast: the hidden layer hides in a plain list."""

    def __init__(self):
        super().__init__()
        self.hidden = [nn.Linear(8, 16)]
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        return self.out(torch.relu(self.hidden[0](x)))


def test_the_layer_check_catches_the_plain_list_bug():
    net = PlainListNet()
    hidden_before = net.hidden[0].weight.detach().clone()
    train_attack_network(net, torch.rand(64, 8), torch.rand(64) > 0.5, NNParams(epochs=2), seed=0)
    assert len(linear_layers(net)) == 1  # what test_every_layer_trains would reject
    assert torch.equal(net.hidden[0].weight, hidden_before)  # and indeed it never trained


def test_training_is_seeded():
    def fit():
        torch.manual_seed(0)
        net = attack_network(4, [8], 0.2)
        x = torch.rand(100, 4, generator=torch.Generator().manual_seed(1))
        return train_attack_network(net, x, x[:, 0] > 0.5, NNParams(epochs=2), seed=5)(x)

    np.testing.assert_array_equal(fit().detach().numpy(), fit().detach().numpy())
