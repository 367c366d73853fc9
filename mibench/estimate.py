"""How much compute a plan needs, from the models' FLOPs, before anything runs.

Training one model costs about 3 x (forward FLOPs per image) x images x epochs
(forward plus a backward of twice the cost); predictions add one forward pass per
evaluation sample. The FLOPs are counted by torch's FlopCounterMode on a model built
on the meta device, so no memory is allocated and no data is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from mibench.config.resolve import PluginConfig, ResolvedGrid
from mibench.interfaces import DataShape
from mibench.plan import Plan

DEFAULT_TFLOPS = 50.0  # effective training throughput assumed for a modern datacenter GPU


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


@dataclass
class ModelCost:
    dataset: str
    architecture: str
    models: int
    gflops_per_image: float
    params_m: float
    train_pflops: float


def plan_cost(resolved: ResolvedGrid, plan: Plan) -> tuple[list[ModelCost], list[str]]:
    """Compute per (dataset, architecture), and the datasets whose size is unknown."""
    rows: dict[tuple[str, str], ModelCost] = {}
    unknown: list[str] = []
    for job in plan.train_jobs.values():
        shape = data_shape(job.dataset)
        if shape is None:
            if job.dataset.label not in unknown:
                unknown.append(job.dataset.label)
            continue
        flops, params = forward_flops(job.architecture, shape.input_shape, shape.num_classes)
        members = shape.pool_size // 4  # every model trains on a quarter of the pool (REFERENCE §1)
        models = len(job.model_keys())
        train = 3 * flops * members * job.training.epochs
        predict = flops * 2 * members * models
        key = (job.dataset.label, job.architecture.label)
        row = rows.setdefault(key, ModelCost(*key, 0, flops / 1e9, params / 1e6, 0.0))
        row.models += models
        row.train_pflops += (train + predict) / 1e15
    return list(rows.values()), unknown
