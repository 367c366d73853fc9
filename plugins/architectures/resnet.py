"""ResNet18 in its CIFAR form: torchvision's ResNet with a 3x3 stride-1 stem and no max-pool."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from mibench.sdk import Architecture, Params, hookimpl


class CifarResNet(ResNet):
    """torchvision's ResNet whose 7x7 stride-2 stem and max-pool give way to one 3x3 stride-1 conv.

    The stem keeps 32x32 inputs at full resolution (REFERENCE §2: 11.2M parameters and
    about 0.56 GMAC for ResNet18, 15x the ImageNet stem's cost at 32x32). ``forward``
    returns ``(logits, features)``, the features being the 512 globally pooled channels.
    """

    def __init__(self, layers: list[int], in_channels: int, num_classes: int) -> None:
        super().__init__(BasicBlock, layers, num_classes=num_classes)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's
        self.maxpool = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        features = torch.flatten(self.avgpool(x), 1)
        return self.fc(features), features


class ResNet18(Architecture):
    """ResNet18, CIFAR form (3x3 stride-1 stem, no max-pool); features: 512 after global pooling."""

    name = "resnet18"
    Params = Params

    def build(self, input_shape, num_classes):
        return CifarResNet([2, 2, 2, 2], input_shape[0], num_classes)


@hookimpl
def register_architectures(register):
    register(ResNet18)
