"""An airbench-style network: a small, fast CIFAR-10 net meant for training many at once.

Written from Keller Jordan's description ("94% on CIFAR-10 in 3.29 seconds on a single
GPU", 2024) and the hyperparameters his airbench94 publishes: a 2 x 2 patch convolution
at the input (the whitening layer, 2 x C x 4 channels), then three blocks of [3 x 3
conv, 2 x 2 max-pool, BatchNorm, GELU, 3 x 3 conv, BatchNorm, GELU] of widths 64, 256
and 256, a global max-pool and a bias-free linear classifier whose logits are scaled by
1/9. Convolutions start as identities on their first channels (dirac), BatchNorm has
eps 1e-12, momentum 0.6 (PyTorch's 0.4) and a scale fixed at 1 (only its bias learns).
The features are the pooled 256-vector.

Deviations, each because an architecture plugin builds a network without seeing data
and without owning the training loop: the whitening layer is a learned convolution
with the default initialisation, not frozen to the eigenvectors of the training
patches' covariance, and its bias is not frozen after 3 epochs; BatchNorm biases share
the model's learning rate (the paper scales theirs by 64). The paper's tricks that are
training rather than network (label smoothing 0.2, alternating flips, 2-pixel
translations, lookahead averaging, test-time augmentation) are not here:
``training: {preset: airbench}`` sets its batch size, optimiser and triangular
schedule, and the grid's defense and dataset say the rest (``label-smoothing`` with
``epsilon: 0.2`` is its loss; a dataset's ``augment`` its crops and flips).
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from mibench.sdk import Architecture, Params, hookimpl


class AirbenchParams(Params):
    widths: list[int] = Field([64, 256, 256], min_length=1, max_length=4,
                              description="Channels of each conv block (the paper's: 64, 256, 256).")
    logit_scale: float = Field(1 / 9, gt=0, description="Factor on the classifier's logits (the paper's 1/9).")


def _conv(c_in: int, c_out: int, kernel: int = 3, bias: bool = False) -> nn.Conv2d:
    """A convolution that starts as the identity on its first ``c_in`` output channels (where it can)."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding="same" if kernel == 3 else 0, bias=bias)
    if kernel % 2 == 1:
        nn.init.dirac_(conv.weight.data[: min(c_in, c_out)])
    return conv


def _norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)  # the scale stays 1: only the bias learns
    return norm


class ConvGroup(nn.Sequential):
    """conv 3x3, max-pool 2, BatchNorm, GELU, conv 3x3, BatchNorm, GELU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(_conv(c_in, c_out), nn.MaxPool2d(2), _norm(c_out), nn.GELU(),
                         _conv(c_out, c_out), _norm(c_out), nn.GELU())


class AirbenchNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, widths: list[int], logit_scale: float) -> None:
        super().__init__()
        whiten = 2 * channels * 2 * 2
        layers: list[nn.Module] = [_conv(channels, whiten, kernel=2, bias=True), nn.GELU()]
        width = whiten
        for w in widths:
            layers.append(ConvGroup(width, w))
            width = w
        self.body = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x):
        features = self.body(x)
        return self.head(features) * self.logit_scale, features


class Airbench(Architecture):
    """The airbench-style fast CIFAR net (Jordan 2024), written from its description; see the module docstring."""

    name = "airbench"
    Params = AirbenchParams

    def build(self, input_shape, num_classes):
        side = min(input_shape[1:]) - 1  # the 2 x 2 patch convolution, then a 2 x 2 max-pool per block
        for _ in self.params.widths:
            side //= 2
        if side < 1:
            raise ValueError(f"airbench with {len(self.params.widths)} blocks needs larger images than "
                             f"{input_shape[1]} x {input_shape[2]}")
        return AirbenchNet(input_shape[0], num_classes, list(self.params.widths), self.params.logit_scale)


@hookimpl
def register_architectures(register):
    register(Airbench)
