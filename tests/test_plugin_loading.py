"""Plugin packages that are wrong fail loudly and cleanly: one line naming the plugin and its
package, exit code 2, no traceback (issue 8, section 3).

Each case installs a real (if tiny) distribution: a ``*.dist-info`` folder with its
``entry_points.txt`` next to its module on PYTHONPATH, which is all importlib.metadata
needs, and runs the real ``mibench`` command in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GOOD_DEFENSE = """
from mibench.sdk import LossDefense, Params, hookimpl
from mibench_plugins.defenses.ce import CrossEntropy


class Plain(LossDefense):
    '''A test defense.'''
    name = "{name}"

    def objective(self, spec):
        return CrossEntropy().objective(spec)
"""


def install(site: Path, dist: str, module: str, source: str, entry_name: str | None = None) -> None:
    """A distribution ``dist`` 1.0 whose entry point ``entry_name`` (default: the module) names ``module``."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(module + "\n")
    (info / "entry_points.txt").write_text(f"[mibench]\n{entry_name or module} = {module}\n")


def mibench(site: Path, *args: str, disable: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("MIBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
    if disable:
        env["MIBENCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([sys.executable, "-m", "mibench", *args], capture_output=True, text=True, env=env)


def assert_one_clean_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def site(tmp_path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def test_misspelled_hook_name(site):
    install(site, "mibench-typo", "mibench_typo", GOOD_DEFENSE.format(name="typo") + """

@hookimpl
def register_defences(register):
    register(Plain)
""")
    line = assert_one_clean_line(mibench(site, "plugins"), "plugin 'mibench_typo'", "mibench-typo",
                                 "register_defences", "register_defenses")
    assert line.startswith("error: ")


def test_misspelled_hook_argument(site):
    install(site, "mibench-argtypo", "mibench_argtypo", GOOD_DEFENSE.format(name="argtypo") + """

@hookimpl
def register_defenses(registr):
    registr(Plain)
""")
    assert_one_clean_line(mibench(site, "plugins"), "plugin 'mibench_argtypo'", "mibench-argtypo", "registr")


def test_params_that_are_not_mibench_params(site):
    install(site, "mibench-badparams", "mibench_badparams", """
from pydantic import BaseModel

from mibench.sdk import LossDefense, hookimpl


class LooseParams(BaseModel):
    b: float = 0.1


class Loose(LossDefense):
    '''A defense whose Params would drop unknown keys.'''
    name = "loose"
    Params = LooseParams


@hookimpl
def register_defenses(register):
    register(Loose)
""")
    assert_one_clean_line(mibench(site, "plugins"), "defense 'loose'", "mibench_badparams", "mibench-badparams",
                          "must subclass mibench.sdk.Params")


def test_two_distributions_with_one_entry_point_name(site):
    install(site, "mibench-one", "mibench_one", GOOD_DEFENSE.format(name="one"), entry_name="shared")
    install(site, "mibench-two", "mibench_two", GOOD_DEFENSE.format(name="two"), entry_name="shared")
    assert_one_clean_line(mibench(site, "plugins"), "'shared'", "mibench-one", "mibench-two")


def test_plugin_that_fails_to_import_says_how_to_run_without_it(site):
    install(site, "mibench-broken", "mibench_broken", "import no_such_dependency_xyz\n")
    line = assert_one_clean_line(mibench(site, "plugins"), "plugin 'mibench_broken'", "mibench-broken",
                                 "no_such_dependency_xyz", "MIBENCH_DISABLE_PLUGIN_AUTOLOAD=1")
    assert "ModuleNotFoundError" in line
    # ... and the way out it names works
    assert mibench(site, "plugins", disable=True).returncode == 0
