"""The CIFAR-form architectures: parameter counts, output shapes, features, cost."""

import pytest
import torch
from torch import nn

from mibench_plugins.architectures.densenet import DenseNet121
from mibench_plugins.architectures.googlenet import LAYOUT, GoogLeNet
from mibench_plugins.architectures.resnet import ResNet18
from mibench_plugins.architectures.vgg import VGG11BN


def conv_bn(cin, cout, k, bias=False):
    """Parameters of a k x k conv and the BatchNorm after it (weight and bias)."""
    return cin * cout * k * k + (cout if bias else 0) + 2 * cout


def linear(cin, cout):
    return cin * cout + cout


def densenet_count(growth, blocks, stem, classes=10):
    """DenseNet-BC: a 3x3 stem conv; per layer BN, 1x1 conv to 4k, BN, 3x3 conv to k;
    transitions BN + 1x1 conv halving the channels; final BN and a linear layer."""
    n, c = 3 * stem * 9, stem
    for i, layers in enumerate(blocks):
        for _ in range(layers):
            n += 2 * c + c * 4 * growth + 2 * 4 * growth + 4 * growth * growth * 9
            c += growth
        if i < len(blocks) - 1:
            n, c = n + 2 * c + c * (c // 2), c // 2
    return n + 2 * c + linear(c, classes)


def googlenet_count(stem_convs, classes=10):
    """Conv+BN units (no conv bias); each Inception: 1x1; 1x1, 3x3; 1x1, 3x3, 3x3; pool, 1x1."""
    n = sum(conv_bn(cin, cout, 3) for cin, cout in stem_convs)
    for entry in LAYOUT:
        if not isinstance(entry, str):
            cin, a, b_red, b, c_red, c, d = entry[1]
            n += conv_bn(cin, a, 1) + conv_bn(cin, b_red, 1) + conv_bn(b_red, b, 3)
            n += conv_bn(cin, c_red, 1) + conv_bn(c_red, c, 3) + conv_bn(c, c, 3) + conv_bn(cin, d, 1)
    return n + linear(1024, classes)


VGG_A = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
VGG_CONVS = sum(conv_bn(cin, cout, 3, bias=True) for cin, cout in VGG_A)

# (architecture, params) -> (parameters for 3 channels and 10 classes, feature width).
MODELS = {
    # torchvision's resnet18 has 11,689,512 parameters (1000 classes, 7x7 stem); the CIFAR
    # form swaps the 7x7x3x64 stem for a 3x3x3x64 one and the 1000-way fc for a 10-way one.
    (ResNet18, ()): (11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64 - linear(512, 1000) + linear(512, 10), 512),
    (VGG11BN, ()): (VGG_CONVS + 2 * linear(512, 512) + linear(512, 10), 512),
    (VGG11BN, (("head", "linear"),)): (VGG_CONVS + linear(512, 10), 512),
    (DenseNet121, ()): (densenet_count(32, (6, 12, 24, 16), 64), 1024),
    (DenseNet121, (("variant", "crl-bc-12"),)): (densenet_count(12, (19, 19, 19), 24), 405),
    (GoogLeNet, ()): (googlenet_count([(3, 192)]), 1024),
    (GoogLeNet, (("variant", "crl"),)): (googlenet_count([(3, 64), (64, 64), (64, 192)]), 1024),
}
# The same counts, as numbers (the usual CIFAR forms' published counts: ResNet18 11.17M,
# DenseNet121 6.96M; the GoogLeNets differ from the usual 6.17M by leaving out conv biases
# that BatchNorm makes redundant).
COUNTS = [11_173_962, 9_756_426, 9_231_114, 6_956_298, 1_020_550, 6_158_346, 6_302_602]


def build(cls, params, channels=3, classes=10, size=32):
    return cls(cls.Params(**dict(params))).build((channels, size, size), classes)


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_the_arithmetic_matches_the_recorded_counts():
    assert [n for n, _ in MODELS.values()] == COUNTS


@pytest.mark.parametrize("key", MODELS, ids=lambda k: "-".join([k[0].name, *(v for _, v in k[1])]))
def test_parameter_count_and_feature_width(key):
    cls, params = key
    expected, width = MODELS[key]
    model = build(cls, params)
    assert count(model) == expected
    model.eval()
    with torch.no_grad():
        logits, features = model(torch.zeros(1, 3, 32, 32))
    assert logits.shape == (1, 10) and features.shape == (1, width)


@pytest.mark.parametrize("cls", [ResNet18, VGG11BN, DenseNet121, GoogLeNet], ids=lambda c: c.name)
@pytest.mark.parametrize("channels, classes", [(1, 10), (1, 100), (3, 100)])
def test_output_shapes(cls, channels, classes):
    model = build(cls, (), channels, classes)
    logits, features = model(torch.randn(2, channels, 32, 32))  # training mode, batch of 2
    assert logits.shape == (2, classes) and features.shape == (2, MODELS[(cls, ())][1])
    # only the input conv and the classifier depend on channels and classes
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    extra = (channels - 3) * first.out_channels * first.kernel_size[0] ** 2 + (classes - 10) * (last.in_features + 1)
    assert count(model) == MODELS[(cls, ())][0] + extra


HEADS = {"resnet18": "fc", "vgg11-bn": "classifier", "densenet121": "classifier", "googlenet": "fc"}


@pytest.mark.parametrize("key", MODELS, ids=lambda k: "-".join([k[0].name, *(v for _, v in k[1])]))
def test_features_are_what_the_classifier_sees(key):
    cls, params = key
    model = build(cls, params).eval()
    with torch.no_grad():
        logits, features = model(torch.randn(2, 3, 32, 32))
        assert torch.allclose(getattr(model, HEADS[cls.name])(features), logits, atol=1e-5)


def multiply_accumulates(model, shape):
    total = 0

    def hook(module, _inputs, out):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += out.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


def test_resnet18_keeps_full_resolution_in_its_stem():
    # REFERENCE §2: about 0.56 GMAC per 32x32 image; the ImageNet stem would cost 15x less
    assert 0.55e9 < multiply_accumulates(build(ResNet18, ()), (3, 32, 32)) < 0.56e9


@pytest.mark.parametrize("cls", [ResNet18, DenseNet121, GoogLeNet], ids=lambda c: c.name)
def test_28x28_grey_inputs_work(cls):
    logits, _ = build(cls, (), channels=1, size=28)(torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2, 10)


def test_vgg_refuses_inputs_below_32x32():
    with pytest.raises(ValueError, match="at least 32x32"):
        build(VGG11BN, (), channels=1, size=28)


def test_architectures_are_registered(registry):
    assert {"resnet18", "vgg11-bn", "densenet121", "googlenet"} <= set(registry.names("architecture"))
    assert registry.get("architecture", "resnet18").cls.Params.model_fields == {}
