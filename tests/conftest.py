"""Shared fixtures: the plugin registry, grid files written on the fly, tiny runs on digits."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mibench.plugins import PluginManager, default_manager, set_registry
from mibench.registry import Registry


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("MIBENCH_PROGRESS", "0")


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Built-ins, installed entry points and the test-only plugins of tests/plugins."""
    from tests.plugins import blackbox, faulty

    manager = default_manager()
    manager.register(faulty, name="tests.plugins.faulty")
    manager.register(blackbox, name="tests.plugins.blackbox")
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
