"""Keys follow exactly the engine code that can change their output (issue 16, section 3).

Each case copies the mibench package, makes a real syntax-tree change to one of its
modules, and prints the plan's model, prediction and attack-output keys from that copy
in a fresh interpreter; the keys are compared with the unedited copy's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mibench
from mibench.registry.code import code_path_modules

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

KEYS = """
import json, sys
from pathlib import Path

import mibench
from mibench.config.resolve import load_grid
from mibench.engine.access import predictions_key
from mibench.engine.plan import build_plan
from mibench.registry.code import clear_caches
from mibench.registry.loading import default_manager

EDIT = "\\n\\ndef _an_edit_that_changes_the_syntax_tree():\\n    return 1\\n"
out = {}
for module in ["", *sys.argv[2:]]:
    path = Path(mibench.__file__).parent / module
    original = path.read_text() if module else ""
    if module:
        path.write_text(original + EDIT)
    clear_caches()
    registry = default_manager().build_registry()
    plan = build_plan(load_grid(sys.argv[1], registry))
    models = sorted(k for run in plan.train_jobs.values() for k in run.model_keys())
    out[module or None] = {"models": models, "predictions": sorted(predictions_key(k) for k in models),
                           "attacks": sorted(a.output_key for a in plan.attack_jobs)}
    if module:
        path.write_text(original)
print(json.dumps(out))
"""

GRID = """
name: code-paths
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [16]}}]
defenses: [ce]
attacks: [loss, lira]
training: {epochs: 1, batch_size: 64}
shadow: {count: 2}
"""

METRICS_AND_REPORTS = ["engine/uncertainty.py", "engine/estimate.py", "engine/metrics.py", "report/tables.py",
                       "report/rows.py", "cli/validate_cmd.py", "engine/protocols/paper.py"]
TRAINING_PATH = ["sdk/trainer.py", "sdk/batches.py", "engine/training.py", "engine/protocols/splits.py"]


@pytest.fixture(scope="module")
def keys_after(tmp_path_factory):
    """keys_after(module or None) -> the plan's keys with ``module`` (a path inside mibench/) edited.

    One copy of the package, edited one module at a time (and restored) in one fresh interpreter.
    """
    root = tmp_path_factory.mktemp("code-paths")
    grid = root / "grid.yaml"
    grid.write_text(GRID)
    shutil.copytree(Path(mibench.__file__).parent, root / "copy" / "mibench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "copy"), *sys.path]),
           "MIBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    modules = [*METRICS_AND_REPORTS, *TRAINING_PATH, "engine/attacking.py", "engine/access.py"]
    done = subprocess.run([sys.executable, "-c", KEYS, str(grid), *modules], env=env, capture_output=True,
                          text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout)
    return lambda module: keys["null" if module is None else module]


@pytest.mark.parametrize("module", METRICS_AND_REPORTS)
def test_editing_metrics_estimates_or_reports_retrains_and_reattacks_nothing(keys_after, module):
    assert keys_after(module) == keys_after(None)


@pytest.mark.parametrize("module", TRAINING_PATH)
def test_editing_the_training_path_retrains_everything(keys_after, module):
    before, after = keys_after(None), keys_after(module)
    assert not set(after["models"]) & set(before["models"])
    assert not set(after["attacks"]) & set(before["attacks"])  # new models, new scores


def test_editing_the_attack_path_reattacks_and_retrains_nothing(keys_after):
    before, after = keys_after(None), keys_after("engine/attacking.py")
    assert after["models"] == before["models"] and after["predictions"] == before["predictions"]
    assert not set(after["attacks"]) & set(before["attacks"])


def test_editing_the_prediction_path_predicts_again_and_retrains_nothing(keys_after):
    before, after = keys_after(None), keys_after("engine/access.py")
    assert after["models"] == before["models"]
    assert not set(after["predictions"]) & set(before["predictions"])
    assert not set(after["attacks"]) & set(before["attacks"])


def test_the_training_path_holds_the_trainer_and_not_the_metrics():
    modules = code_path_modules("mibench.engine.training")
    assert {"mibench.sdk.trainer", "mibench.sdk.batches", "mibench.sdk.objective", "mibench.engine.pools",
            "mibench.engine.store"} <= set(modules)
    assert not {"mibench.engine.metrics", "mibench.engine.uncertainty", "mibench.engine.estimate",
                "mibench.engine.access", "mibench.sdk.thresholds", "mibench.engine.protocols.paper",
                "mibench.engine.protocols.pool"} & set(modules)
