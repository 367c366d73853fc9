"""Cached results follow the code that made them (issue 8, section 4).

Plugins here live in a plain directory (not an installed package), the case where a
researcher iterates on a defense in place. Each test edits a module, reloads it,
rebuilds the registry and re-runs the grid into the same output directory.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections import Counter

import pytest

import mibench.engine.attacking
import mibench.engine.training
from mibench.config.resolve import load_grid
from mibench.registry.code import module_closure, plugin_digest
from mibench.registry.loading import PluginManager
from mibench.runner import Runner

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

DEFENSE = """
import torch.nn.functional as F

from mibench.sdk import LossDefense, Objective, hookimpl
from codeplug_helpers import SCALE


class ScaledCE(Objective):
    def forward(self, logits, features, targets, epoch):
        return F.cross_entropy(logits, targets) * SCALE


class EditMe(LossDefense):
    '''A defense under development.'''
    name = "edit-me"

    def objective(self, spec):
        return ScaledCE()


@hookimpl
def register_defenses(register):
    register(EditMe)
"""

HELPERS = "SCALE = 1.0\n"

ATTACK = """
from mibench.sdk import ThresholdAttack, hookimpl


class EditMeAttack(ThresholdAttack):
    '''An attack under development.'''
    name = "edit-me-attack"

    def signal(self, logits, labels):
        return logits.max(1).values


@hookimpl
def register_attacks(register):
    register(EditMeAttack)
"""

UNRELATED = """
from mibench.sdk import LossDefense, hookimpl


class Unrelated(LossDefense):
    '''Not in the grid.'''
    name = "unrelated"


@hookimpl
def register_defenses(register):
    register(Unrelated)
"""

GRID = """
name: code-digests
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [16]}}]
defenses: [ce, edit-me]
attacks: [loss, edit-me-attack]
training: {epochs: 2, batch_size: 64}
shadow: {count: 1}
"""

MODULES = {"codeplug_defense": DEFENSE, "codeplug_helpers": HELPERS, "codeplug_attack": ATTACK,
           "codeplug_unrelated": UNRELATED}


@pytest.fixture
def plugdir(tmp_path, monkeypatch):
    path = tmp_path / "plugins"
    path.mkdir()
    for name, source in MODULES.items():
        (path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def counted(monkeypatch):
    """Training runs and attack runs actually done, by defense and attack name."""
    trained: Counter = Counter()
    attacked: Counter = Counter()
    real_train, real_attack = mibench.engine.training.run_train_job, mibench.engine.attacking.run_attack_job

    def train(job, store, device):
        if not all(store.has("models", k, "pt") for k in job.model_keys()):
            trained[job.defense.name] += 1
        return real_train(job, store, device)

    def attack(job, store, device, opener=None):
        if not store.has("attacks", job.output_key, "npz"):
            attacked[job.attack.name] += 1
        return real_attack(job, store, device, opener)

    monkeypatch.setattr(mibench.engine.training, "run_train_job", train)
    monkeypatch.setattr(mibench.engine.attacking, "run_attack_job", attack)
    return trained, attacked


def run(plugdir, write_grid, out):
    manager = PluginManager()
    manager.load_builtins()
    for name in MODULES:
        module = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
        if name != "codeplug_helpers":
            manager.register(module, name=name)
    registry = manager.build_registry()
    summary = Runner(load_grid(write_grid(GRID), registry), registry, out, log=lambda _: None).run()
    assert summary.ok, summary.failures
    return summary


def edit(plugdir, module: str, old: str, new: str) -> None:
    path = plugdir / f"{module}.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_plugins_digest_covers_the_modules_it_imports_from_its_package(plugdir):
    importlib.import_module("codeplug_defense")
    assert set(module_closure("codeplug_defense", within=("codeplug_defense", "codeplug_helpers"))) == {
        "codeplug_defense", "codeplug_helpers"}
    from mibench_plugins.defenses.crl import CRL

    closure = module_closure(CRL.__module__)
    assert "mibench_plugins.defenses.relax" in closure and "mibench_plugins.attacks.lira" not in closure
    before = plugin_digest(CRL)
    assert before == plugin_digest(CRL) and len(before) == 16


def test_editing_a_defense_retrains_its_models_only(plugdir, write_grid, tmp_path, counted):
    trained, attacked = counted
    out = tmp_path / "run"
    run(plugdir, write_grid, out)
    assert trained == {"ce": 2, "edit-me": 2} and attacked == {"loss": 2, "edit-me-attack": 2}
    digests = json.loads((out / "run.json").read_text())["code_digests"]
    assert set(digests) == {"engine", "plugins"} and "defense/edit-me" in digests["plugins"]

    trained.clear(), attacked.clear()
    edit(plugdir, "codeplug_helpers", "SCALE = 1.0", "SCALE = 0.5")  # a module the defense imports
    run(plugdir, write_grid, out)
    assert trained == {"edit-me": 2}  # target and shadow of edit-me; ce reused
    assert attacked == {"loss": 1, "edit-me-attack": 1}  # only the cell whose models changed

    trained.clear(), attacked.clear()
    edit(plugdir, "codeplug_defense", "'''A defense under development.'''",
         "'''A defense under development.'''\n    # a comment and a blank line change no digest\n")
    run(plugdir, write_grid, out)
    assert trained == {} and attacked == {}


def test_editing_an_attack_reruns_it_and_retrains_nothing(plugdir, write_grid, tmp_path, counted):
    trained, attacked = counted
    out = tmp_path / "run"
    run(plugdir, write_grid, out)
    trained.clear(), attacked.clear()
    edit(plugdir, "codeplug_attack", "logits.max(1).values", "logits.softmax(1).max(1).values")
    run(plugdir, write_grid, out)
    assert trained == {} and attacked == {"edit-me-attack": 2}


def test_editing_an_unrelated_plugin_changes_nothing(plugdir, write_grid, tmp_path, counted):
    trained, attacked = counted
    out = tmp_path / "run"
    run(plugdir, write_grid, out)
    rows = (out / "results.csv").read_text()
    trained.clear(), attacked.clear()
    edit(plugdir, "codeplug_unrelated", "'''Not in the grid.'''", "'''Not in the grid.'''\n    label_smoothing = 0.1")
    run(plugdir, write_grid, out)
    assert trained == {} and attacked == {}
    assert (out / "results.csv").read_text() == rows
