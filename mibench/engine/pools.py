"""Loading a dataset's pool (subsampled when asked) and its splits, once per process."""

from __future__ import annotations

from functools import lru_cache

import torch

from mibench.config.plugin_config import PluginConfig
from mibench.engine.protocol import PoolLayout, Protocol
from mibench.sdk import Pool, stratified_subsample


@lru_cache(maxsize=4)
def load_pool(dataset: PluginConfig) -> Pool:
    """The dataset's pool, subsampled to ``pool_size`` when asked; cached per process."""
    pool = dataset.create().load_pool()
    if not isinstance(pool, Pool):
        raise TypeError(f"dataset {dataset.name!r} returned {type(pool).__name__} from load_pool(), not a mibench.sdk.Pool")
    size = getattr(dataset.params, "pool_size", None)
    if size is None or size >= len(pool):
        return pool
    idx = torch.as_tensor(stratified_subsample(pool.labels.numpy(), size, dataset.params.pool_seed))
    return Pool(pool.inputs[idx], pool.labels[idx], pool.num_classes, pool.mean, pool.std, pool.scale, pool.augment)


@lru_cache(maxsize=16)
def protocol(dataset: PluginConfig, split_seed: int, layout: PoolLayout | None = None) -> Protocol:
    """The splits of ``dataset``'s pool: the paper's protocol, or the pool protocol with ``layout``."""
    return Protocol.build(len(load_pool(dataset)), split_seed, layout)
