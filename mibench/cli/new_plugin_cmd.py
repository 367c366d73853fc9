"""``mibench new-plugin KIND NAME``: a package skeleton with its entry point, one plugin and a passing test."""

from __future__ import annotations

import re
from pathlib import Path

import click

KINDS = ("defense", "attack", "architecture")

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A mibench {kind} plugin: {name}"
requires-python = ">=3.10"
dependencies = ["mibench"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.mibench]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

PLUGINS = {
    "defense": '''"""{title}: a loss-only defense (cross-entropy plus a confidence penalty, as a start)."""

import torch.nn.functional as F
from pydantic import Field

from mibench.sdk import LossDefense, Objective, Params, hookimpl


class {cls}Params(Params):
    weight: float = Field(0.1, ge=0, description="Weight of the entropy bonus (0: plain cross-entropy).")


class {cls}Loss(Objective):
    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, logits, features, targets, epoch):
        log_p = F.log_softmax(logits, 1)
        entropy = -(log_p.exp() * log_p).sum(1).mean()
        return F.cross_entropy(logits, targets) - self.weight * entropy


class {cls}(LossDefense):
    """{title}: replace the loss with yours."""

    name = "{name}"
    Params = {cls}Params

    def objective(self, spec):
        return {cls}Loss(self.params.weight)


@hookimpl
def register_defenses(register):
    register({cls})
''',
    "attack": '''"""{title}: a threshold attack (the target's confidence in the true class, as a start)."""

from mibench.sdk import ThresholdAttack, hookimpl, true_class_prob


class {cls}(ThresholdAttack):
    """{title}: one number per sample, higher for members; thresholds come from the shadow models."""

    name = "{name}"

    def signal(self, logits, labels):
        return true_class_prob(logits, labels)


@hookimpl
def register_attacks(register):
    register({cls})
''',
    "architecture": '''"""{title}: a network (a one-hidden-layer MLP, as a start)."""

import math

from pydantic import Field
from torch import nn

from mibench.sdk import Architecture, Params, hookimpl


class {cls}Params(Params):
    width: int = Field(64, ge=1, description="Width of the hidden layer (the features).")


class {cls}Net(nn.Module):
    def __init__(self, inputs: int, width: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.ReLU())
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        features = self.body(x)
        return self.head(features), features  # (logits, features)


class {cls}(Architecture):
    """{title}: build(input_shape, num_classes) returns a module whose forward gives (logits, features)."""

    name = "{name}"
    Params = {cls}Params

    def build(self, input_shape, num_classes):
        return {cls}Net(math.prod(input_shape), self.params.width, num_classes)


@hookimpl
def register_architectures(register):
    register({cls})
''',
}

GRID_KEY = {"defense": 'defenses=["ce", "{name}"]', "attack": 'attacks=["loss", "{name}"]',
            "architecture": 'architectures=["{name}"]'}
ROW = {"defense": 'defense="{name}"', "attack": 'attack="{name}"', "architecture": 'architecture="{name}"'}

TEST = '''"""{title}, tested as mibench runs it: a tiny grid through mibench.sdk.testing."""

import {module}
from mibench.sdk.testing import tiny_grid


def test_{module}_runs_in_a_grid(mibench_run):
    run = mibench_run(tiny_grid({grid_key}), plugins=[{module}])
    assert run.ok, run.failures
    row = run.row({row})
    assert row["status"] == "ok" and 0.0 <= row["auc"] <= 1.0
'''

CONFTEST = '''"""The mibench_run fixture (mibench.sdk.testing): a tiny grid run into the test's temporary directory."""

from mibench.sdk.testing import mibench_run  # noqa: F401 - a pytest fixture, found here by name
'''

README = '''# {dist}

A mibench {kind} plugin, `{name}`. Install it beside mibench and every grid can use it:

    pip install -e '.[test]'
    mibench plugins          # lists {name}
    pytest                   # runs a tiny grid with it (tests/)

Edit `{module}.py`; docs/plugins.md in mibench explains each part.
'''


@click.command("new-plugin")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False), default=None,
              help="Where to write the package (default: ./mibench-NAME).")
def new_plugin_command(kind: str, name: str, directory: str | None) -> None:
    """Write a package skeleton for a KIND plugin called NAME: pyproject with its entry point, the plugin, a test."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise click.UsageError(f"NAME must be lowercase letters, digits and '-', starting with a letter; got {name!r}")
    root = Path(directory or f"mibench-{name}")
    if root.exists() and any(root.iterdir()):
        raise click.UsageError(f"{root} exists and is not empty; give another --directory")
    module = "mibench_" + name.replace("-", "_")
    fields = {"name": name, "kind": kind, "module": module, "dist": f"mibench-{name}",
              "cls": "".join(part.capitalize() for part in name.split("-")), "title": name}
    fields["grid_key"] = GRID_KEY[kind].format(**fields)
    fields["row"] = ROW[kind].format(**fields)
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(**fields))
    (root / f"{module}.py").write_text(PLUGINS[kind].format(**fields))
    (root / "tests" / f"test_{module}.py").write_text(TEST.format(**fields))
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "README.md").write_text(README.format(**fields))
    click.echo(f"wrote {root}/: pyproject.toml (entry point {name} = {module}), {module}.py, "
               f"tests/test_{module}.py (and its conftest.py), README.md")
    click.echo(f"next: cd {root} && pip install -e '.[test]' && pytest")
