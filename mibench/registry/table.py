"""The typed registry that plugins fill: one table per kind, duplicate names refused.

Each plugin class is checked when it registers (its kind, its name, its ``Params``),
so a mistake in an outside package is one clear error naming the class and its
package, not a wrong result later.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from pydantic import BaseModel

from mibench.registry.code import plugin_digest
from mibench.sdk import Architecture, Attack, Canary, Dataset, Defense, Params, Plugin

KINDS: dict[str, type[Plugin]] = {
    "dataset": Dataset,
    "architecture": Architecture,
    "defense": Defense,
    "attack": Attack,
    "canary": Canary,
}

# The hook that fills each kind's table (mibench.sdk.hooks).
HOOKS: dict[str, str] = {kind: f"register_{kind}s" for kind in KINDS} | {"canary": "register_canaries"}

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

# The module whose ``BUILTIN`` maps each built-in protocol's name to "module:class"; read
# by name like the built-in plugin modules, since the protocols live above this layer.
PROTOCOLS_MODULE = "mibench.engine.protocols"


class PluginError(Exception):
    """A plugin could not be loaded or registered; the message says which and why."""


class UnknownPlugin(PluginError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        shown = repr(name) if len(repr(name)) <= 80 else f"{repr(name)[:80]}... ({len(name):,} characters)"
        super().__init__(f"unknown {kind} {shown}; registered: {', '.join(known) or 'none'}")


@lru_cache(maxsize=None)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _source_of(cls: type) -> tuple[str, str, str]:
    """(module, distribution, version) that a plugin class comes from."""
    module = cls.__module__
    top = module.split(".")[0]
    dists = _distributions().get(top, [])
    if not dists:
        return module, top, getattr(sys.modules.get(top), "__version__", "unknown")
    dist = dists[0]
    try:
        return module, dist, metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover - broken install
        return module, dist, "unknown"


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin class and where it came from."""

    kind: str
    name: str
    cls: type[Plugin]
    module: str
    package: str
    version: str
    code: str = ""  # digest of the plugin's code (mibench.registry.code)

    @property
    def source(self) -> str:
        return f"{self.module} ({self.package} {self.version})"


class Registry:
    """Plugins by kind and name. Filled through the ``register_*`` hooks."""

    def __init__(self) -> None:
        self._plugins: dict[str, dict[str, PluginInfo]] = {kind: {} for kind in KINDS}
        self._protocols: dict[str, type | str] = dict(importlib.import_module(PROTOCOLS_MODULE).BUILTIN)

    # -------------------------------------------------------------- protocols

    def add_protocol(self, cls: type) -> type:
        """Register a protocol strategy (a subclass of ``mibench.engine.protocols.base.Protocol``) by its ``name``."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(f"protocol {cls!r} needs a name of lowercase letters, digits, '-', '_' or '.'")
        existing = self._protocols.get(name)
        if existing is not None and existing is not cls:
            raise PluginError(f"protocol {name!r} is registered twice")
        self._protocols[name] = cls
        return cls

    def remove_protocol(self, name: str) -> None:
        self._protocols.pop(name, None)

    def protocol(self, name: str) -> type:
        """The protocol strategy class named ``name`` (a grid's ``protocol:``)."""
        found = self._protocols.get(name)
        if found is None:
            raise UnknownPlugin("protocol", name, self.protocol_names())
        if isinstance(found, str):
            module, _, attr = found.partition(":")
            found = self._protocols[name] = getattr(importlib.import_module(module), attr)
        return found

    def protocol_names(self) -> list[str]:
        return sorted(self._protocols)

    # ---------------------------------------------------------------- plugins

    def add(self, kind: str, cls: type) -> PluginInfo:
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"{HOOKS[kind]} got {cls!r}, which is not a {base.__name__} subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(
                f"{cls.__module__}.{cls.__qualname__} needs a name of lowercase letters, digits, '-', '_' or '.'"
            )
        module, package, version = _source_of(cls)
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, Params)):
            what = params.__name__ if isinstance(params, type) else repr(params)
            hint = " (a plain pydantic model would silently drop unknown keys)" if (
                isinstance(params, type) and issubclass(params, BaseModel)) else ""
            raise PluginError(f"{kind} {name!r} from {module} ({package} {version}): its Params {what} "
                              f"must subclass mibench.sdk.Params{hint}")
        info = PluginInfo(kind, name, cls, module, package, version, plugin_digest(cls))
        existing = self._plugins[kind].get(name)
        if existing is not None and existing.cls is not cls:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {existing.source} and by {info.source}"
            )
        self._plugins[kind][name] = info
        return info

    def get(self, kind: str, name: str) -> PluginInfo:
        try:
            return self._plugins[kind][name]
        except KeyError:
            raise UnknownPlugin(kind, name, self.names(kind)) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._plugins[kind])

    def all(self) -> list[PluginInfo]:
        return [info for kind in KINDS for _, info in sorted(self._plugins[kind].items())]

    def versions(self) -> dict[str, str]:
        """Package -> version of every package that contributed a plugin."""
        return {info.package: info.version for info in self.all()}
