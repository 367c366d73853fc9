"""Shared fixtures: the plugin registry, grid files written on the fly, tiny runs on digits."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import pytest

from mibench.registry.loading import PluginManager, default_manager, set_registry
from mibench.registry.table import Registry


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("MIBENCH_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _torch_threads():
    """A test that runs a serial executor with --threads-per-job changes torch's thread count: restore it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Built-ins, installed entry points and the test-only plugins of tests/plugins."""
    from tests.plugins import blackbox, faulty, synthetic

    manager = default_manager()
    for module in (faulty, blackbox, synthetic):
        manager.register(module, name=module.__name__)
    return manager.build_registry()


@pytest.fixture
def cli_registry(registry):
    """Make the CLI use the test registry."""
    set_registry(registry)
    yield registry
    set_registry(None)


def builtin_only_manager() -> PluginManager:
    manager = PluginManager()
    manager.load_builtins()
    return manager


@pytest.fixture
def write_grid(tmp_path):
    """write_grid(text) -> path of a grid file holding the dedented text."""

    def write(text: str, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


def alias_bomb(grid: str) -> str:
    """``grid`` followed by a billion-laughs document: 9 levels of 9-fold YAML aliases (9^10 nodes)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return grid + "\n".join(lines) + "\n"


DIGITS_GRID = """
name: digits-test
seeds: [0]
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [64]}}]
defenses: [ce]
attacks: [loss, entropy, m-entropy]
training:
  epochs: 12
  batch_size: 64
  optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0}
shadow: {count: 2}
"""



@functools.lru_cache(maxsize=1)
def _digits_pool():
    from mibench_plugins.datasets.digits import Digits

    return Digits().load_pool()


def digits_job(architecture=None, *, epochs: int = 3, seed: int = 0):
    """A TrainingContext on the digits target split, to test a defense outside the runner.

    ``architecture`` is an Architecture plugin instance (default: an MLP with one
    hidden layer of 32); training is SGD, lr 0.1, batch 64 on the CPU.
    """
    import torch

    from mibench.sdk.training_config import TrainingConfig
    from mibench.sdk.defense import TrainingContext
    from mibench.engine.protocols.splits import PaperSplits
    from mibench.sdk.trainer import Trainer
    from mibench_plugins.architectures.small import MLP

    pool = _digits_pool()
    architecture = architecture or MLP(MLP.Params(hidden=[32]))
    config = TrainingConfig(
        epochs=epochs, batch_size=64, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    )
    device = torch.device("cpu")
    torch.manual_seed(seed)
    return TrainingContext(
        pool=pool,
        train_indices=PaperSplits.build(len(pool), 0).target.members,
        build_model=lambda: architecture.build(pool.input_shape, pool.num_classes),
        trainer=Trainer(config, pool, device, seed),
        seed=seed,
        device=device,
        role="target",
    )


@pytest.fixture
def fit_calls(monkeypatch):
    """Spies on Trainer.fit: one record per call, with the weights as they were before training."""
    import copy
    from types import SimpleNamespace

    import numpy as np

    from mibench.sdk.trainer import Trainer

    calls = []
    real = Trainer.fit

    def spy(self, model, indices, objective, **kwargs):
        calls.append(SimpleNamespace(
            model=model,
            indices=np.array(indices),
            objective=objective,
            targets=kwargs.get("targets"),
            model_before=copy.deepcopy(model.state_dict()),
            objective_before=copy.deepcopy(objective.state_dict()),
        ))
        return real(self, model, indices, objective, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls
