"""Protocols are strategy objects: each owns its splits, plan, checks and rows, and a new one needs no engine edit.

The test protocol here, ``paper-swapped``, is the paper's design with the target and
shadow halves exchanged; it is defined and registered in this file alone and runs
end to end.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mibench
from mibench.cli.main import main
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.plan import build_plan
from mibench.engine.protocols.paper import PaperProtocol
from mibench.engine.protocols.pool import PoolProtocol
from mibench.engine.protocols.splits import PaperSplits, Role, Split, halve
from mibench.engine.store import Store
from mibench.runner import Runner
from mibench.sdk.sampling import seeded_rng


@dataclass(frozen=True)
class SwappedSplits(PaperSplits):
    """The paper's halves, exchanged: the target trains on what would be the shadow half."""

    @classmethod
    def build(cls, pool_size: int, split_seed: int, shadow_count: int = 0) -> "SwappedSplits":
        paper = PaperSplits.build(pool_size, split_seed)
        members, nonmembers = halve(paper.shadow_half, seeded_rng(split_seed, 1))
        return cls(paper.shadow_half, paper.target_half, Split(members, nonmembers), shadow_count)


@dataclass(frozen=True)
class SwappedProtocol(PaperProtocol):
    name: ClassVar[str] = "paper-swapped"
    splits_type: ClassVar[type] = SwappedSplits

    def build_splits(self, pool_size: int, split_seed: int) -> SwappedSplits:
        return SwappedSplits.build(pool_size, split_seed, self.shadow_count)


@pytest.fixture
def swapped(registry):
    registry.add_protocol(SwappedProtocol)
    yield registry
    registry.remove_protocol(SwappedProtocol.name)


GRID = """
name: protocols
seeds: [0]
device: cpu
protocol: PROTOCOL
datasets: [{name: digits, params: {pool_size: 600}}]
architectures: [{name: mlp, params: {hidden: [16]}}]
defenses: [ce]
attacks: [loss, lira]
shadow: {count: 2}
training: {epochs: 2, batch_size: 64}
"""


def test_a_protocol_defined_outside_the_engine_runs_end_to_end(swapped, write_grid, tmp_path):
    resolved = load_grid(write_grid(GRID.replace("PROTOCOL", "paper-swapped")), swapped)
    assert isinstance(resolved.protocol, SwappedProtocol) and resolved.protocol.shadow_count == 2
    summary = Runner(resolved, swapped, tmp_path / "out").run()
    assert summary.ok, summary.failures
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert results["status"].eq("ok").all() and results["protocol"].eq("paper-swapped").all()
    assert list(results["attack"]) == ["loss", "lira"] and results["shadow_count"].tolist() == [2, 2]

    # The target trained on the swapped halves, and the saved splits say so.
    paper, swapped_splits = PaperSplits.build(600, 0), SwappedSplits.build(600, 0)
    store = Store(tmp_path / "out" / "store")
    target = [r for r in build_plan(resolved).train_jobs.values() if r.role == Role("target")][0]
    saved = store.load_torch("models", target.key)["members"].numpy()
    assert np.array_equal(saved, swapped_splits.target.members)
    assert np.isin(saved, paper.shadow_half).all()
    with np.load(next((tmp_path / "out" / "store" / "splits").glob("*.npz"))) as arrays:
        assert np.array_equal(arrays["target_members"], swapped_splits.target.members)

    # Its models are its own: the same grid under the paper protocol shares none of them.
    paper_plan = build_plan(load_grid(write_grid(GRID.replace("PROTOCOL", "paper"), "paper.yaml"), swapped))
    assert not set(paper_plan.train_jobs) & set(build_plan(resolved).train_jobs)


def test_an_unknown_protocol_is_one_line_naming_the_field_and_the_registered_ones(registry, write_grid):
    path = write_grid(GRID.replace("PROTOCOL", "canary"))
    with pytest.raises(ConfigError) as err:
        load_grid(path, registry)
    assert str(err.value) == f"{path}:4: protocol: unknown protocol 'canary'; registered: paper, pool"


def test_the_cli_refuses_an_unknown_protocol_with_exit_code_2(cli_registry, write_grid):
    result = CliRunner().invoke(main, ["validate", str(write_grid(GRID.replace("PROTOCOL", "canary")))])
    assert result.exit_code == 2
    assert "protocol: unknown protocol 'canary'" in result.output and "Traceback" not in result.output


def test_each_protocol_checks_what_only_it_can_check(registry, write_grid):
    online = GRID.replace("[loss, lira]", "[{name: lira, params: {mode: online}}]")
    with pytest.raises(ConfigError, match="'protocol: paper' trains offline shadows only"):
        load_grid(write_grid(online.replace("PROTOCOL", "paper")), registry)
    pool = online.replace("PROTOCOL", "pool") + "pool: {models: 4}\n"
    with pytest.raises(ConfigError, match=r"needs 2 IN and 2 OUT reference models per sample; pool.models 4 gives 1"):
        load_grid(write_grid(pool), registry)


def test_roles_are_typed_and_keys_hash_their_text():
    assert str(Role("target")) == "target" and str(Role("shadow", 3, reference=True)) == "shadow-3"
    assert Role("pool", 3) != Role("shadow", 3)
    with pytest.raises(ValueError, match="unknown model role 'shadow-0'"):
        PoolProtocol(4, 0.5).build_splits(100, 0).split(Role("shadow", 0))


def test_protocols_are_picklable_values_that_key_their_models():
    import pickle

    pool = PoolProtocol(8, 0.5)
    assert pickle.loads(pickle.dumps(pool)) == pool and hash(pool) == hash(PoolProtocol(8, 0.5))
    assert pool.identity()["pool"] == [8, 0.5] and "pool" not in PaperProtocol(2).identity()
    assert pool.identity()["splits_code"] == PaperProtocol(2).identity()["splits_code"]  # one module of split math
    assert SwappedProtocol(2).identity()["splits_code"] != PaperProtocol(2).identity()["splits_code"]


def _protocol_branches(path: Path) -> list[str]:
    """Lines of ``path`` that compare with a protocol's name or a ``protocol`` attribute."""
    names = {"paper", "pool"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literal = any(isinstance(s, ast.Constant) and s.value in names for s in sides)
        text = any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides)
        attribute = text and any(isinstance(s, ast.Attribute) and s.attr == "protocol" for s in sides)
        if literal or attribute:
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_module_outside_the_strategies_branches_on_a_protocol(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('if grid.protocol == "pool":\n    pass\nif "paper" != name:\n    pass\n')
    assert _protocol_branches(probe) == ["probe.py:1", "probe.py:3"]  # the check finds what it looks for
    root = Path(mibench.__file__).parent
    modules = [p for p in root.rglob("*.py") if "protocols" not in p.relative_to(root).parts]
    assert len(modules) > 50
    assert [line for p in modules for line in _protocol_branches(p)] == []
