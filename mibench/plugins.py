"""Loading plugins: the built-in modules, then every package of the ``mibench`` entry-point group.

Built-ins register exactly as outside plugins do, through the hooks of
:mod:`mibench.hookspecs`. Set ``MIBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the
built-ins (outside packages stay installed but are ignored).
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata
from typing import Iterable

import pluggy

from mibench import hookspecs
from mibench.registry import KINDS, PluginError, Registry

ENTRY_POINT_GROUP = "mibench"
DISABLE_ENV = "MIBENCH_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "mibench_plugins.datasets.fashion_mnist",
    "mibench_plugins.datasets.digits",
    "mibench_plugins.datasets.cifar",
    "mibench_plugins.datasets.svhn",
    "mibench_plugins.architectures.small",
    "mibench_plugins.architectures.resnet",
    "mibench_plugins.architectures.vgg",
    "mibench_plugins.architectures.densenet",
    "mibench_plugins.architectures.googlenet",
    "mibench_plugins.defenses.ce",
    "mibench_plugins.defenses.simple",
    "mibench_plugins.defenses.early_stopping",
    "mibench_plugins.defenses.relaxloss",
    "mibench_plugins.defenses.crl",
    "mibench_plugins.defenses.advreg",
    "mibench_plugins.defenses.dmp",
    "mibench_plugins.defenses.dpsgd",
    "mibench_plugins.attacks.threshold",
    "mibench_plugins.attacks.nn_attack",
    "mibench_plugins.attacks.gradient",
    "mibench_plugins.attacks.lira",
    "mibench_plugins.attacks.rmia",
)


class PluginManager:
    """A typed wrapper around pluggy's manager for mibench's four hooks."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a module or object that has ``@hookimpl`` functions."""
        self._pm.register(plugin, name=name)

    def load_builtins(self, modules: Iterable[str] = BUILTIN_PLUGINS) -> None:
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                raise PluginError(f"built-in plugin {module_name} failed to import: {exc}") from exc
            self.register(module, name=module_name)

    def load_entrypoints(self) -> None:
        if os.environ.get(DISABLE_ENV, "").strip() not in {"", "0"}:
            return
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self._pm.get_plugin(ep.name) is not None or self._pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                dist = ep.dist.name if ep.dist else "unknown package"
                raise PluginError(
                    f"plugin {ep.name!r} ({ep.value}, from {dist}) failed to import: {exc}"
                ) from exc
            self.register(plugin, name=ep.name)

    def build_registry(self) -> Registry:
        """Ask every plugin to register its classes; refuses duplicates."""
        registry = Registry()
        for kind in KINDS:
            hook = getattr(self._pm.hook, f"register_{kind}s")
            hook(register=lambda cls, _kind=kind: registry.add(_kind, cls))
        return registry


def default_manager() -> PluginManager:
    manager = PluginManager()
    manager.load_builtins()
    manager.load_entrypoints()
    return manager


_registry: Registry | None = None


def get_registry() -> Registry:
    """The registry of built-in and installed plugins, built once per process."""
    global _registry
    if _registry is None:
        _registry = default_manager().build_registry()
    return _registry


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests register their own plugins this way)."""
    global _registry
    _registry = registry
