"""VGG11 with batch norm in its CIFAR form: torchvision's configuration 'A' layers, a 512-wide head."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from mibench.sdk import Architecture, Params, hookimpl

MIN_SIZE = 32  # five 2x2 max-pools: 32x32 becomes 1x1


class VGGParams(Params):
    head: Literal["crl", "linear"] = Field(
        "crl",
        description="crl: Dropout, Linear 512-512, ReLU, Dropout, Linear 512-512 (the features), ReLU, "
        "Linear(512, C), as the CRL authors' code; linear: one Linear(512, C) on the pooled features (RelaxLoss's).",
    )
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before each hidden linear layer (crl head only).")


class CifarVGG(nn.Module):
    """torchvision's VGG11-BN conv layers, a global pooling (1x1 already at 32x32) and a head.

    ``forward`` returns ``(logits, features)``: with the crl head the features are the
    second 512-wide linear layer's output before its ReLU (where the CRL code takes
    them); with the linear head they are the pooled 512 channels.
    """

    def __init__(self, in_channels: int, num_classes: int, head: str, dropout: float) -> None:
        super().__init__()
        self.features = make_layers(cfgs["A"], batch_norm=True)
        if in_channels != 3:  # torchvision builds the first conv for RGB
            self.features[0] = nn.Conv2d(in_channels, self.features[0].out_channels, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        width = 512
        if head == "crl":
            self.hidden = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(width, width), nn.ReLU(inplace=True),
                nn.Dropout(dropout), nn.Linear(width, width),
            )
            self.classifier = nn.Sequential(nn.ReLU(), nn.Linear(width, num_classes))  # not in place: keeps the features
        else:
            self.hidden = nn.Identity()
            self.classifier = nn.Linear(width, num_classes)
        for m in self.features.modules():  # He init, fan-out (torchvision's and the CRL code's)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.hidden(torch.flatten(self.pool(self.features(x)), 1))
        return self.classifier(features), features


class VGG11BN(Architecture):
    """VGG11 with batch norm, CIFAR form (32x32 -> 1x1x512); features: the penultimate 512."""

    name = "vgg11-bn"
    Params = VGGParams

    def build(self, input_shape, num_classes):
        if min(input_shape[1:]) < MIN_SIZE:
            raise ValueError(f"vgg11-bn needs inputs of at least {MIN_SIZE}x{MIN_SIZE}, got {input_shape[1:]}")
        return CifarVGG(input_shape[0], num_classes, self.params.head, self.params.dropout)


@hookimpl
def register_architectures(register):
    register(VGG11BN)
