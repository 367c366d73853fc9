"""The airbench-style network and the airbench training preset: shapes, (logits, features), the paper's layer
choices, a few training steps on the CPU, and that it stacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mibench.config.plugin_config import PluginConfig
from mibench.engine.stacking import architecture_refusal
from mibench.sdk.dataset import Pool
from mibench.sdk.params import result_dump
from mibench.sdk.trainer import Trainer
from mibench.sdk.training_config import TrainingConfig
from mibench_plugins.architectures.airbench import Airbench
from mibench_plugins.defenses.ce import CrossEntropy


def build(shape, classes=10, **params):
    torch.manual_seed(0)
    return Airbench(Airbench.Params(**params)).build(shape, classes)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])
def test_shapes_logits_and_features(shape):
    net = build(shape).eval()
    logits, features = net(torch.rand(5, *shape))
    assert logits.shape == (5, 10) and features.shape == (5, 256)
    # the logits are the bias-free classifier of the features, scaled by 1/9
    assert torch.allclose(logits, F.linear(features, net.head.weight) / 9, atol=1e-6)
    assert net.head.bias is None


def test_the_papers_layer_choices():
    net = build((3, 32, 32))
    whiten = net.body[0]
    assert (whiten.in_channels, whiten.out_channels, whiten.kernel_size, whiten.bias is not None) == (3, 24, (2, 2), True)
    widths = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1:]
    assert widths == [64, 64, 256, 256, 256, 256]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 6 and all(not n.weight.requires_grad and n.bias.requires_grad for n in norms)
    assert {(n.eps, n.momentum) for n in norms} == {(1e-12, 0.4)}
    first = net.body[2][0].weight  # block 1's first conv: the identity on its 24 input channels
    assert torch.equal(first[:24, :, 1, 1], torch.eye(24)) and first[:24, :, 0, 0].abs().sum() == 0
    # 3*24*4 + 24 (whitening), 24*64*9 + 64*64*9 + 2*128 (block 1), 64*256*9 + 256*256*9 + 2*512 (block 2),
    # 2*256*256*9 + 2*512 (block 3), 256*10 (classifier)
    assert sum(p.numel() for p in net.parameters()) == 312 + 50_944 + 738_304 + 1_180_672 + 2_560


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="airbench with 3 blocks needs larger images than 8 x 8"):
        build((1, 8, 8))
    assert build((1, 8, 8), widths=[8, 16])(torch.rand(2, 1, 8, 8))[0].shape == (2, 10)


def test_the_airbench_preset_fills_what_is_not_given():
    preset = TrainingConfig(preset="airbench")
    assert (preset.epochs, preset.batch_size) == (10, 1024)
    assert preset.optimizer.model_dump() == {"name": "sgd", "lr": 1.5, "momentum": 0.85, "weight_decay": 0.00133,
                                             "nesterov": True}
    assert (preset.schedule.name, preset.schedule.start, preset.schedule.peak, preset.schedule.end) == \
        ("triangle", 0.2, 0.23, 0.07)
    mine = TrainingConfig(preset="airbench", epochs=4, optimizer={"lr": 0.5})
    assert (mine.epochs, mine.optimizer.lr, mine.optimizer.momentum) == (4, 0.5, 0.85)  # given keys win, one by one
    spelled_out = TrainingConfig(**{k: v for k, v in preset.model_dump().items() if k != "preset"})
    assert result_dump(spelled_out) == result_dump(preset)  # the preset's name is in no model key


def test_a_few_training_steps_learn_with_the_preset():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (256, 3, 16, 16), dtype=torch.uint8, generator=gen)
    labels = (images.float().mean((1, 2, 3)) > images.float().mean()).long()  # bright or dark: learnable
    pool = Pool(images, labels, 2, (0.5,) * 3, (0.25,) * 3)
    config = TrainingConfig(preset="airbench", epochs=8, batch_size=64)
    net = build((3, 16, 16), classes=2, widths=[8, 16, 16])
    x = (images.float() / 255 - 0.5) / 0.25
    before = F.cross_entropy(net.eval()(x)[0], labels).item()
    Trainer(config, pool, torch.device("cpu"), seed=0).fit(net, torch.arange(256).numpy(), CrossEntropy())
    after = F.cross_entropy(net(x)[0], labels).item()
    assert after < 0.5 * before


def test_airbench_stacks():
    from mibench.registry.loading import default_manager

    info = default_manager().build_registry().get("architecture", "airbench")  # registered like any built-in
    config = PluginConfig(info, info.cls.Params())
    assert architecture_refusal(config, (3, 32, 32), 10) is None
