"""``mibench new-plugin KIND NAME`` writes a package whose entry point, plugin and test work as written."""

from __future__ import annotations

import importlib.util
import sys
import tomllib

import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.sdk.testing import run_grid

pytestmark = pytest.mark.slow  # runs each skeleton's tiny grid


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["defense", "attack", "architecture"])
def test_the_skeleton_registers_its_plugin_and_its_test_passes(kind, tmp_path, monkeypatch):
    name = f"acme-{kind}"
    result = CliRunner().invoke(main, ["new-plugin", kind, name, "--directory", str(tmp_path / "pkg")])
    assert result.exit_code == 0, result.output
    module_name = f"mibench_acme_{kind}"
    assert result.output.splitlines()[0] == (f"wrote {tmp_path / 'pkg'}/: pyproject.toml (entry point {name} = "
                                             f"{module_name}), {module_name}.py, tests/test_{module_name}.py (and its "
                                             "conftest.py), README.md")
    project = tomllib.loads((tmp_path / "pkg" / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["mibench"] == {name: module_name}
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    load(tmp_path / "pkg" / f"{module_name}.py", module_name)
    assert "import mibench_run" in (tmp_path / "pkg" / "tests" / "conftest.py").read_text()
    test = load(tmp_path / "pkg" / "tests" / f"test_{module_name}.py", f"test_{module_name}")
    getattr(test, f"test_{module_name}_runs_in_a_grid")(lambda grid, plugins=(): run_grid(grid, plugins,
                                                                                         tmp_path / "run"))


def test_a_bad_name_or_a_full_directory_is_refused(tmp_path):
    bad = CliRunner().invoke(main, ["new-plugin", "defense", "My_Defense", "-d", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "NAME must be lowercase letters, digits and '-', starting with a letter; got " \
        "'My_Defense'" in bad.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    full = CliRunner().invoke(main, ["new-plugin", "attack", "mine", "-d", str(tmp_path / "full")])
    assert full.exit_code == 2 and "exists and is not empty" in full.output
