"""Small networks for CPU-sized benchmarks and tests: an MLP and a two-block CNN."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field
from torch import nn

from mibench.sdk import Architecture, Params, hookimpl


class MLPParams(Params):
    hidden: list[int] = Field([256, 128], min_length=1, description="Widths of the hidden layers.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")


class MLPNet(nn.Module):
    def __init__(self, in_features: int, hidden: list[int], num_classes: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        features = self.body(x)
        return self.head(features), features


class MLP(Architecture):
    """Fully connected network; features are the last hidden layer."""

    name = "mlp"
    Params = MLPParams

    def build(self, input_shape, num_classes):
        return MLPNet(math.prod(input_shape), list(self.params.hidden), num_classes, self.params.dropout)


class SmallCNNParams(Params):
    channels: list[int] = Field([16, 32], min_length=1, max_length=4, description="Filters of each conv block.")
    hidden: int = Field(128, ge=1, description="Width of the penultimate (feature) layer.")
    norm: Literal["none", "batch", "group"] = Field(
        "none", description="Normalisation after each conv: none, BatchNorm, or GroupNorm (DP-SGD needs none or group)."
    )


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "group":
        return [nn.GroupNorm(min(8, channels), channels)]
    return []


class SmallCNNNet(nn.Module):
    def __init__(self, input_shape, channels: list[int], hidden: int, num_classes: int, norm: str = "none") -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width, (_, h, w) = input_shape[0], input_shape
        for c in channels:
            blocks += [nn.Conv2d(width, c, 3, padding=1), *_norm(norm, c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            width, h, w = c, -(-h // 2), -(-w // 2)
        self.conv = nn.Sequential(*blocks, nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(width * h * w, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        features = self.fc(self.conv(x))
        return self.head(features), features


class SmallCNN(Architecture):
    """Conv blocks (3x3 conv, [norm], ReLU, 2x2 max-pool), a hidden layer (the features), the classifier."""

    name = "small-cnn"
    Params = SmallCNNParams

    def build(self, input_shape, num_classes):
        p = self.params
        return SmallCNNNet(input_shape, list(p.channels), p.hidden, num_classes, p.norm)


@hookimpl
def register_architectures(register):
    register(MLP)
    register(SmallCNN)
