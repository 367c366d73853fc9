"""Plugin registration: built-ins, a hookimpl from a test, an installed entry-point package."""

import json
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from mibench.sdk import hooks as hookspecs
from mibench.cli.main import main
from mibench.sdk.hooks import hookimpl
from mibench.sdk.attack import Attack
from mibench.sdk.defense import LossDefense
from mibench.registry.loading import BUILTIN_PLUGINS, DISABLE_ENV, PluginManager, default_manager
from mibench.registry.table import PluginError
from mibench_plugins.defenses.ce import CrossEntropy
from tests.conftest import builtin_only_manager

README = Path(__file__).resolve().parents[1] / "README.md"


def test_builtins_are_registered(registry):
    assert {"fashion-mnist", "digits"} <= set(registry.names("dataset"))
    assert {"mlp", "small-cnn"} <= set(registry.names("architecture"))
    assert "ce" in registry.names("defense")
    assert {"loss", "entropy", "m-entropy"} <= set(registry.names("attack"))
    ce = registry.get("defense", "ce")
    assert ce.package == "mibench" and ce.module == "mibench_plugins.defenses.ce"


def test_builtins_register_through_the_hooks_like_outside_plugins():
    # An empty manager knows nothing: the core itself names no plugin class.
    assert PluginManager().build_registry().all() == []
    for module in BUILTIN_PLUGINS:
        assert module.startswith("mibench_plugins.")


class TestDefense(LossDefense):
    """A defense defined in a test module."""

    __test__ = False
    name = "test-defense"

    def objective(self, spec):
        return CrossEntropy()


class TestPlugin:
    @hookimpl
    def register_defenses(self, register):
        register(TestDefense)


def test_a_hookimpl_registered_in_a_test():
    manager = builtin_only_manager()
    manager.register(TestPlugin())
    registry = manager.build_registry()
    info = registry.get("defense", "test-defense")
    assert info.cls is TestDefense and info.module == __name__


def test_installed_entry_point_package_is_loaded(registry):
    info = registry.get("defense", "flooding")
    assert info.package == "mibench-flooding"
    assert info.version == metadata.version("mibench-flooding")
    assert info.module == "mibench_flooding"


def test_outside_plugins_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    registry = default_manager().build_registry()
    assert "flooding" not in registry.names("defense")
    assert "ce" in registry.names("defense")


def test_duplicate_name_names_both_sources():
    class Duplicate(LossDefense):
        name = "ce"

    class Plugin:
        @hookimpl
        def register_defenses(self, register):
            register(Duplicate)

    manager = builtin_only_manager()
    manager.register(Plugin())
    with pytest.raises(PluginError) as info:
        manager.build_registry()
    message = str(info.value)
    assert "defense 'ce' is registered twice" in message
    assert "mibench_plugins.defenses.ce (mibench" in message and f"{__name__} (" in message


def test_wrong_kind_is_refused():
    class NotADefense(Attack):
        name = "oops"

    class Plugin:
        @hookimpl
        def register_defenses(self, register):
            register(NotADefense)

    manager = PluginManager()
    manager.register(Plugin())
    with pytest.raises(PluginError, match="register_defenses got .*NotADefense.*not a Defense subclass"):
        manager.build_registry()


def test_builtin_import_error_names_the_plugin():
    with pytest.raises(PluginError, match="built-in plugin mibench_plugins.missing failed to import"):
        PluginManager().load_builtins(["mibench_plugins.missing"])


def test_entry_point_import_error_names_the_plugin(monkeypatch):
    broken = metadata.EntryPoint(name="broken", value="no_such_module_xyz", group="mibench")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [broken])
    manager = PluginManager()
    with pytest.raises(PluginError, match=r"plugin 'broken' \(no_such_module_xyz, .*\) failed to import"):
        manager.load_entrypoints()


def test_cli_lists_plugins_with_their_schemas(cli_registry):
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.output)}
    flooding = rows[("defense", "flooding")]
    assert flooding["package"] == "mibench-flooding"
    assert flooding["params"]["properties"]["b"]["minimum"] == 0
    assert rows[("attack", "loss")]["params"]["additionalProperties"] is False
    text = CliRunner().invoke(main, ["plugins"]).output
    assert "flooding" in text and "mibench-flooding" in text


def test_every_hook_is_documented_in_the_readme():
    readme = README.read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("register_")]
    assert len(hooks) == 5
    for hook in hooks:
        assert hook in readme, f"{hook} is not documented in README.md"
