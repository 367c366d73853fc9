"""The architecture interface: a plugin that builds a classifier for a dataset's shape."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from mibench.sdk.params import Plugin


class Architecture(Plugin):
    """Builds a classifier whose forward returns ``(logits, features)``.

    ``features`` are the penultimate activations (after global pooling, or the
    input of the last linear layer): CRL's center loss needs them.
    """

    kind: ClassVar[str] = "architecture"

    def build(self, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        raise NotImplementedError
