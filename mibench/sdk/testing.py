"""Testing a plugin: run a tiny grid with your own plugins and get its result rows back.

The stable way to test a plugin package (the engine's modules behind it may change)::

    from mibench.sdk.testing import run_grid, tiny_grid

    def test_my_defense_trains_and_is_attacked():
        run = run_grid(tiny_grid(defenses=["my-defense"]), plugins=[my_plugin_module])
        assert run.ok, run.failures
        assert run.row(defense="my-defense", attack="loss")["auc"] > 0.5

or, with pytest, the ``mibench_run`` fixture (``from mibench.sdk.testing import mibench_run``
in your ``tests/conftest.py``), which runs into the test's own temporary directory. ``tiny_grid``
is the built-in 8x8 ``digits`` dataset, a small ``mlp``, ``ce`` and the ``loss`` attack,
3 epochs, one shadow model, on the CPU: a few seconds. Every key you pass replaces its
entry; the grid is validated exactly as ``mibench run`` validates it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml


def tiny_grid(**keys: Any) -> dict[str, Any]:
    """A grid that trains in seconds on a CPU; ``keys`` replace its top-level entries (``defenses=[...]``)."""
    grid: dict[str, Any] = {
        "name": "plugin-test",
        "seeds": [0],
        "device": "cpu",
        "datasets": ["digits"],
        "architectures": [{"name": "mlp", "params": {"hidden": [32]}}],
        "defenses": ["ce"],
        "attacks": ["loss"],
        "training": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "sgd", "lr": 0.1}},
        "shadow": {"count": 1},
    }
    grid.update(keys)
    return grid


@dataclass
class TinyRun:
    """A finished test run: its result rows (one dict per row of ``results.csv``), log lines and directory."""

    rows: list[dict[str, Any]]
    output: Path
    log: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No cell failed and every result was written."""
        return not self.failures

    def attack_info(self, row: dict[str, Any]) -> dict[str, Any]:
        """What the attack of ``row`` reported beside its scores (its ``AttackOutput.info``, ``target_queries``)."""
        stored = json.loads((self.output / "store" / "attacks" / f"{row['attack_output']}.json").read_text())
        return stored["info"]

    def row(self, **match: Any) -> dict[str, Any]:
        """The one row whose columns equal ``match`` (``row(defense="ce", attack="loss")``)."""
        found = [r for r in self.rows if all(r.get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise LookupError(f"{len(found)} rows match {match}; the rows have: "
                              f"{sorted({(r.get('defense'), r.get('attack')) for r in self.rows})}")
        return found[0]


def run_grid(grid: dict[str, Any] | str, plugins: Iterable[object] = (), output: str | Path | None = None) -> TinyRun:
    """Validate and run ``grid`` (a dict, or YAML text) with the built-in and installed plugins plus ``plugins``
    (modules or objects with ``@hookimpl`` functions); into ``output``, or a fresh temporary directory.

    A grid error raises :class:`mibench.config.errors.ConfigError` with the message ``mibench validate``
    prints. A plugin that is installed (an entry point) is registered once, whether or not it is
    also passed in ``plugins``.
    """
    from mibench.config.resolve import load_grid
    from mibench.registry.loading import default_manager
    from mibench.runner import Runner

    out = Path(output) if output is not None else Path(tempfile.mkdtemp(prefix="mibench-test-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "grid.yaml"
    path.write_text(grid if isinstance(grid, str) else yaml.safe_dump(grid, sort_keys=False))
    manager = default_manager()
    for plugin in plugins:
        if not manager.has(plugin):
            manager.register(plugin)
    registry = manager.build_registry()
    lines: list[str] = []
    summary = Runner(load_grid(path, registry), registry, out / "run", log=lines.append).run()
    rows = [row.model_dump(mode="json") for row in summary.rows]
    return TinyRun(rows, out / "run", lines, list(summary.failures))


try:  # the pytest fixture, where pytest is installed
    import pytest
except ImportError:  # pragma: no cover - pytest is a test dependency
    pytest = None

if pytest is not None:

    @pytest.fixture
    def mibench_run(tmp_path):
        """``mibench_run(grid, plugins=())``: :func:`run_grid` into this test's temporary directory."""

        def run(grid: dict[str, Any] | str, plugins: Iterable[object] = ()) -> TinyRun:
            return run_grid(grid, plugins, tmp_path / "mibench")

        return run
