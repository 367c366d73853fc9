"""GoogLeNet in its CIFAR forms: torchvision's Inception modules after a 3x3 stem, no early stride."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torchvision.models.googlenet import BasicConv2d, Inception

from mibench.sdk import Architecture, Params, hookimpl

# Inception 3a..5b: in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection (Szegedy et al. 2015, table 1).
# "pool3" and "pool4" are 3x3 stride-2 max-pools (after stages 3 and 4).
LAYOUT = [
    ("a3", (192, 64, 96, 128, 16, 32, 32)),
    ("b3", (256, 128, 128, 192, 32, 96, 64)),
    "pool3",
    ("a4", (480, 192, 96, 208, 16, 48, 64)),
    ("b4", (512, 160, 112, 224, 24, 64, 64)),
    ("c4", (512, 128, 128, 256, 24, 64, 64)),
    ("d4", (512, 112, 144, 288, 32, 64, 64)),
    ("e4", (528, 256, 160, 320, 32, 128, 128)),
    "pool4",
    ("a5", (832, 256, 160, 320, 32, 128, 128)),
    ("b5", (832, 384, 192, 384, 48, 128, 128)),
]
FEATURES = 1024


class GoogLeNetParams(Params):
    variant: Literal["cifar", "crl"] = Field(
        "cifar",
        description="cifar: one 3x3 conv to 192 channels, Inception 3a-3b at 32x32 (the common CIFAR GoogLeNet); "
        "crl: three 3x3 convs (64, 64, 192) and a stride-2 max-pool before 3a (the CRL authors' code).",
    )
    dropout: float = Field(0.4, ge=0, lt=1, description="Dropout on the pooled features before the classifier.")


class CifarInception(Inception):
    """torchvision's Inception module whose "5x5" branch is two stacked 3x3 convs (5x5 receptive field).

    torchvision's own branch has a single 3x3 conv there (a known bug it keeps for its
    pretrained weights); the CIFAR GoogLeNets stack two.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
            BasicConv2d(ch5x5, ch5x5, kernel_size=3, padding=1),
        )


def _stem(variant: str, in_channels: int) -> list[tuple[str, nn.Module]]:
    if variant == "cifar":
        return [("stem", BasicConv2d(in_channels, 192, kernel_size=3, padding=1))]
    return [
        ("stem1", BasicConv2d(in_channels, 64, kernel_size=3, padding=1)),
        ("stem2", BasicConv2d(64, 64, kernel_size=3, padding=1)),
        ("stem3", BasicConv2d(64, 192, kernel_size=3, padding=1)),
        ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
    ]


class CifarGoogLeNet(nn.Module):
    """Stem, Inception 3a..5b with two stride-2 max-pools, global pooling (the features), dropout, linear."""

    def __init__(self, in_channels: int, num_classes: int, variant: str, dropout: float) -> None:
        super().__init__()
        layers = _stem(variant, in_channels)
        for entry in LAYOUT:
            layers.append((entry, nn.MaxPool2d(3, stride=2, padding=1)) if isinstance(entry, str)
                          else (entry[0], CifarInception(*entry[1])))
        self.body = nn.Sequential(OrderedDict(layers))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.flatten(self.pool(self.body(x)), 1)
        return self.fc(self.dropout(features)), features


class GoogLeNet(Architecture):
    """GoogLeNet, CIFAR form (3x3 stem to 192 channels, no early stride); features: 1024 before dropout."""

    name = "googlenet"
    Params = GoogLeNetParams

    def build(self, input_shape, num_classes):
        return CifarGoogLeNet(input_shape[0], num_classes, self.params.variant, self.params.dropout)


@hookimpl
def register_architectures(register):
    register(GoogLeNet)
