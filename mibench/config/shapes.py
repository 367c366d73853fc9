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
        out = model(x)
    check_forward_output(out, num_classes)
    return int(counter.get_total_flops()), sum(p.numel() for p in model.parameters())


def check_forward_output(out: object, num_classes: int) -> None:
    """Refuse a forward pass of one image that is not ``(logits 1 x classes, features 1 x ...)``."""
    if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        got = type(out).__name__ + (f" of {len(out)}" if isinstance(out, (tuple, list)) else "")
        raise ValueError(f"forward must return (logits, features), two tensors; it returned a {got}")
    logits, features = out
    if tuple(logits.shape) != (1, num_classes):
        raise ValueError(f"forward's logits for one image must be 1 x {num_classes}, got {tuple(logits.shape)}")
    if features.ndim < 2 or features.shape[0] != 1:
        raise ValueError(f"forward's features for one image must be 1 x D, got {tuple(features.shape)}")


def _checked(shape: DataShape, name: str) -> DataShape:
    dims = shape.input_shape
    if not (isinstance(dims, tuple) and len(dims) == 3 and all(isinstance(d, int) and d > 0 for d in dims)):
        raise ValueError(f"dataset {name!r}: inputs must be C x H x W (the pool N x C x H x W), got {dims!r}")
    return shape


def data_shape(dataset: PluginConfig) -> DataShape | None:
    """The dataset's shape with ``pool_size`` applied; None if the plugin cannot say."""
    plugin = dataset.create()
    shape = plugin.shape()
    if shape is None:
        if plugin.missing_data() is not None:
            return None
        pool = plugin.load_pool()  # the Pool refuses inputs that are not N x C x H x W
        shape = DataShape(pool.input_shape, pool.num_classes, len(pool))
    shape = _checked(shape, dataset.name)
    size = getattr(dataset.params, "pool_size", None)
    return DataShape(shape.input_shape, shape.num_classes, min(size, shape.pool_size) if size else shape.pool_size)
