"""DenseNet121 in its CIFAR forms: torchvision's DenseNet with a 3x3 stride-1 stem and no max-pool."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torchvision.models import DenseNet

from mibench.sdk import Architecture, Params, hookimpl

# growth rate, layers per dense block, channels of the stem (twice the growth rate)
VARIANTS = {
    # The usual CIFAR DenseNet121: ImageNet DenseNet121's blocks, about 7.0M parameters, 1024-d features.
    "cifar-121": {"growth_rate": 32, "block_config": (6, 12, 24, 16), "num_init_features": 64},
    # The CRL authors' "DenseNet121": DenseNet-BC, depth 121, growth 12, 3 blocks of 19 bottleneck
    # layers, about 1.0M parameters, 405-d features.
    "crl-bc-12": {"growth_rate": 12, "block_config": (19, 19, 19), "num_init_features": 24},
}


class DenseNetParams(Params):
    variant: Literal["cifar-121", "crl-bc-12"] = Field(
        "cifar-121",
        description="cifar-121: growth 32, blocks [6, 12, 24, 16], 1024-d features (the common CIFAR "
        "DenseNet121); crl-bc-12: DenseNet-BC with growth 12, 3 blocks of 19 layers, 405-d features "
        "(the model the CRL authors' code calls DenseNet121).",
    )


class CifarDenseNet(DenseNet):
    """torchvision's DenseNet-BC whose stem (7x7 stride-2 conv, BN, ReLU, max-pool) is one 3x3 stride-1 conv.

    Dense layers start with BN-ReLU, so the stem needs none of its own (as in the CIFAR
    DenseNets). ``forward`` returns ``(logits, features)``, the features being the
    globally pooled channels after the final BN-ReLU.
    """

    def __init__(self, in_channels: int, num_classes: int, **config) -> None:
        super().__init__(bn_size=4, num_classes=num_classes, **config)
        stem = nn.Conv2d(in_channels, config["num_init_features"], kernel_size=3, padding=1, bias=False)
        nn.init.kaiming_normal_(stem.weight)  # as torchvision initialises its convs
        self.features.conv0 = stem
        del self.features.norm0, self.features.relu0, self.features.pool0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = F.relu(self.features(x))
        features = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.classifier(features), features


class DenseNet121(Architecture):
    """DenseNet121, CIFAR form (3x3 stride-1 stem, no max-pool); features after global pooling."""

    name = "densenet121"
    Params = DenseNetParams

    def build(self, input_shape, num_classes):
        return CifarDenseNet(input_shape[0], num_classes, **VARIANTS[self.params.variant])


@hookimpl
def register_architectures(register):
    register(DenseNet121)
