"""What a model and a dataset look like, known without data or memory.

Models are built on the meta device: no weights are allocated, yet a forward pass
runs (shapes propagate), so a model that cannot take a dataset's input fails here,
and torch's FlopCounterMode counts the FLOPs of the pass.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from mibench.config.plugin_config import PluginConfig
from mibench.sdk import DataShape


@lru_cache(maxsize=64)
def forward_flops(architecture: PluginConfig, input_shape: tuple[int, int, int], num_classes: int) -> tuple[int, int]:
    """(FLOPs of one forward pass of one image, parameter count)."""
    with torch.device("meta"):
        model = architecture.create().build(input_shape, num_classes)
        x = torch.zeros((1, *input_shape))
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops()), sum(p.numel() for p in model.parameters())


def data_shape(dataset: PluginConfig) -> DataShape | None:
    """The dataset's shape with ``pool_size`` applied; None if the plugin cannot say."""
    shape = dataset.create().shape()
    if shape is None:
        return None
    size = getattr(dataset.params, "pool_size", None)
    return DataShape(shape.input_shape, shape.num_classes, min(size, shape.pool_size) if size else shape.pool_size)
