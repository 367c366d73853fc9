"""A worker's open models: a pool's attacks must not reopen every reference (LRU smaller than the pool misses
every time), and a bounded memory budget closes the least recently used."""

from types import SimpleNamespace

import torch

from mibench.execution import executor
from mibench.execution.executor import ModelCache, held_bytes

OPENED = []


def fake_open(store, ref, device):
    OPENED.append(ref.key)
    return SimpleNamespace(_state={"w": torch.zeros(250)}, _logits=None)  # 1,000 bytes of weights


def test_a_cache_as_large_as_the_pool_reads_each_model_once(monkeypatch):
    monkeypatch.setattr(executor, "open_model", fake_open)
    OPENED.clear()
    refs = [SimpleNamespace(key=f"m{i}") for i in range(64)]
    store = SimpleNamespace(root="store")
    cache = ModelCache(executor.MODELS_KEPT, executor.MODEL_BYTES_KEPT)
    for target in range(64):  # each target's attack reads every model of the pool
        for ref in refs:
            cache(store, ref, torch.device("cpu"))
    assert len(OPENED) == 64
    OPENED.clear()
    small = ModelCache(32)  # the old size: cyclic reads through an LRU of 32 miss every time
    for target in range(3):
        for ref in refs:
            small(store, ref, torch.device("cpu"))
    assert len(OPENED) == 3 * 64


def test_the_memory_budget_closes_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(executor, "open_model", fake_open)
    cache = ModelCache(max_bytes=3500)
    store = SimpleNamespace(root="store")
    for i in range(5):
        cache(store, SimpleNamespace(key=f"m{i}"), torch.device("cpu"))
    assert [k for _, k in cache._opened] == ["m2", "m3", "m4"]  # 3 x 1,000 bytes fit, a fourth does not
    assert held_bytes(cache._opened[("store", "m4")]) == 1000
