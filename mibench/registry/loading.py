"""Loading plugins: the built-in modules, then every package of the ``mibench`` entry-point group.

Built-ins register exactly as outside plugins do, through the hooks of
:mod:`mibench.sdk.hooks`. Set ``MIBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the
built-ins (outside packages stay installed but are ignored).

Every way a plugin can be wrong when it loads (it fails to import, a hook name or a
hook argument is misspelled, two packages claim one entry-point name) is a
:class:`PluginError` whose message names the plugin and its package.
"""

from __future__ import annotations

import importlib
import os
import warnings
from importlib import metadata
from typing import Iterable

import pluggy

from mibench.registry.table import HOOKS, KINDS, PluginError, Registry
from mibench.sdk import hooks

ENTRY_POINT_GROUP = "mibench"
DISABLE_ENV = "MIBENCH_DISABLE_PLUGIN_AUTOLOAD"
WITHOUT_OUTSIDE = f"to run with the built-in plugins only, set {DISABLE_ENV}=1"

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
    "mibench_plugins.architectures.airbench",
    "mibench_plugins.defenses.ce",
    "mibench_plugins.defenses.simple",
    "mibench_plugins.defenses.early_stopping",
    "mibench_plugins.defenses.relaxloss",
    "mibench_plugins.defenses.crl",
    "mibench_plugins.defenses.advreg",
    "mibench_plugins.defenses.dmp",
    "mibench_plugins.defenses.dpsgd",
    "mibench_plugins.attacks.confidence",
    "mibench_plugins.attacks.nn_attack",
    "mibench_plugins.attacks.gradient",
    "mibench_plugins.attacks.lira",
    "mibench_plugins.attacks.rmia",
    "mibench_plugins.attacks.label_only",
    "mibench_plugins.canaries.designs",
)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class PluginManager:
    """A typed wrapper around pluggy's manager for mibench's four hooks."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hooks.PROJECT)
        self._pm.add_hookspecs(hooks)
        self._sources: dict[str, str] = {}  # registered name -> "plugin X (module, from package)"

    def register(self, plugin: object, name: str | None = None, source: str | None = None) -> None:
        """Register a module or object that has ``@hookimpl`` functions.

        ``source`` describes where it comes from, for error messages.
        """
        label = name or getattr(plugin, "__name__", repr(plugin))
        description = source or f"plugin {label}"
        try:
            registered = self._pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{description}: {' '.join(str(exc).split())}") from None
        except ValueError as exc:  # pluggy: already registered under this name or object
            raise PluginError(f"{description}: {exc}") from None
        self._sources[registered or label] = description

    def _why_empty(self, plugin: object, registered: int) -> str | None:
        """Why ``plugin`` registered no class (``registered`` is how many it did), or None when it did."""
        if registered:
            return None
        if self._pm.get_hookcallers(plugin):
            return "its hooks ran but called register() with no class"
        unmarked = [name for name in HOOKS.values() if callable(getattr(plugin, name, None))]
        if unmarked:
            return f"{', '.join(unmarked)} lack{'s' * (len(unmarked) == 1)} @hookimpl (from mibench.sdk import hookimpl)"
        return f"it has none of mibench's hooks ({', '.join(HOOKS.values())})"

    def has(self, plugin: object) -> bool:
        """Whether ``plugin`` (a module or object) is registered already (an installed entry point, say)."""
        return self._pm.is_registered(plugin)

    def load_builtins(self, modules: Iterable[str] = BUILTIN_PLUGINS) -> None:
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                raise PluginError(f"built-in plugin {module_name} failed to import: {_one_line(exc)}") from exc
            self.register(module, name=module_name, source=f"built-in plugin {module_name}")

    def load_entrypoints(self) -> None:
        if os.environ.get(DISABLE_ENV, "").strip() not in {"", "0"}:
            return
        claimed: dict[str, str] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "an unknown package"
            if ep.name in claimed and claimed[ep.name] != dist:
                raise PluginError(f"plugin name {ep.name!r} is claimed by two packages, {claimed[ep.name]} and "
                                  f"{dist}; uninstall one of them ({WITHOUT_OUTSIDE})")
            claimed[ep.name] = dist
            if self._pm.get_plugin(ep.name) is not None or self._pm.is_blocked(ep.name):
                continue
            source = f"plugin {ep.name!r} ({ep.value}, from {dist})"
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                raise PluginError(f"{source} failed to import: {_one_line(exc)}; {WITHOUT_OUTSIDE}") from exc
            self.register(plugin, name=ep.name, source=source)

    def check(self) -> None:
        """Refuse hook implementations whose name is not a mibench hook (a misspelling)."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self._pm.get_name(exc.plugin) if exc.plugin is not None else None
            where = self._sources.get(name or "", f"plugin {name}")
            known = ", ".join(HOOKS.values())
            raise PluginError(f"{where}: {' '.join(str(exc).split())}; mibench's hooks are {known}") from None

    def build_registry(self) -> Registry:
        """Ask every plugin to register its classes; refuses duplicates and misspelled hooks."""
        self.check()
        registry = Registry()
        added: dict[str, int] = {}  # plugin name -> classes its hooks registered
        for kind in KINDS:
            hook = getattr(self._pm.hook, HOOKS[kind])
            for impl in reversed(hook.get_hookimpls()):  # the order pluggy calls them in, one plugin at a time

                def register(cls, _kind=kind, _name=impl.plugin_name):
                    added[_name] = added.get(_name, 0) + 1
                    registry.add(_kind, cls)

                impl.function(register=register)
        for name, description in self._sources.items():  # a plugin that registered nothing, silently: say so
            plugin = self._pm.get_plugin(name)
            why = self._why_empty(plugin, added.get(name, 0)) if plugin is not None else None
            if why is not None:
                warnings.warn(f"{description} registers nothing: {why}", UserWarning, stacklevel=2)
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
