"""Loading a dataset's pool (subsampled when asked), its protocol's splits and pool, once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from mibench.config.plugin_config import PluginConfig
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
def splits(dataset: PluginConfig, split_seed: int, protocol: Any) -> Any:
    """The splits (a :class:`~mibench.engine.protocols.splits.Splits`) of ``dataset``'s pool under ``protocol``."""
    return protocol.build_splits(len(load_pool(dataset)), split_seed)


def run_splits(run: Any) -> Any:
    """The splits a :class:`~mibench.engine.models.TrainingRun` trains on."""
    return splits(run.dataset, run.split_seed, run.protocol)


@lru_cache(maxsize=4)
def protocol_pool(dataset: PluginConfig, split_seed: int, protocol: Any) -> Pool:
    """The pool ``protocol`` trains and attacks on: the dataset's, with what the protocol adds (canaries)."""
    return protocol.prepare_pool(load_pool(dataset), splits(dataset, split_seed, protocol))


def run_pool(run: Any) -> Pool:
    """The pool a :class:`~mibench.engine.models.TrainingRun` trains on and is attacked on."""
    return protocol_pool(run.dataset, run.split_seed, run.protocol)
