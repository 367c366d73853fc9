"""One plugin with validated params, as a grid names it: the unit every plan and key is made of."""

from __future__ import annotations

import json
import dataclasses
from dataclasses import dataclass
from typing import Any

from mibench.registry.table import PluginInfo
from mibench.sdk import Params, Plugin, result_dump


@dataclass(frozen=True, eq=False)
class PluginConfig:
    """One plugin with validated params: a dataset, an architecture, a defense config or an attack.

    Two configs are equal when their :meth:`spec` is: same plugin, params and version.
    """

    info: PluginInfo
    params: Params
    swept: tuple[str, ...] = ()
    position: int = -1  # index of its entry in the grid's list (for error messages), not part of the spec
    named: tuple[str, ...] = ()  # params its label names although at their default (they differ between configs)

    def _spec_text(self) -> str:
        return json.dumps(self.spec(), sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginConfig) and self._spec_text() == other._spec_text()

    def __hash__(self) -> int:
        return hash(self._spec_text())

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        return self.info.kind

    def params_json(self) -> dict[str, Any]:
        """Every param that can change a result, as JSON (see :func:`mibench.sdk.result_dump`)."""
        return result_dump(self.params)

    def spec(self) -> dict[str, Any]:
        """What identifies this config in a hash: name, result-changing params, the plugin's version and code."""
        return {"name": self.name, "params": self.params_json(), "version": self.info.version, "code": self.info.code}

    @property
    def label(self) -> str:
        """``name`` or ``name(k=v, ...)`` with the params that differ from the defaults, are swept, or differ
        between this plugin's configs in the grid (:func:`name_differences`)."""
        values = self.params_json()
        named = {k for k in self.named if values.get(k) is not None}  # an unset (null) param says nothing
        shown = set(self.params.model_dump(exclude_defaults=True)) | set(self.swept) | named
        changed = {k: v for k, v in values.items() if k in shown}
        if not changed:
            return self.name
        inner = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in changed.items())
        return f"{self.name}({inner})"

    def create(self) -> Plugin:
        return self.info.cls(self.params)

    def with_params(self, **changes: Any) -> "PluginConfig":
        """This config with some params replaced (and validated again)."""
        params = self.info.cls.Params.model_validate({**self.params.model_dump(), **changes})
        return PluginConfig(self.info, params, self.swept, self.position, self.named)


def name_differences(configs: list[PluginConfig]) -> list[PluginConfig]:
    """``configs`` with every param that differs between configs of one plugin named in all their labels,
    so that no two configs print the same label and each says what sets it apart (``relaxloss`` beside
    ``relaxloss(alpha=1.0)`` becomes ``relaxloss(alpha=0.5)``)."""
    by_name: dict[str, list[PluginConfig]] = {}
    for config in configs:
        by_name.setdefault(config.name, []).append(config)
    differing: dict[str, tuple[str, ...]] = {}
    for name, group in by_name.items():
        values = [c.params_json() for c in group]
        keys = sorted({k for v in values for k in v})
        differing[name] = tuple(k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in values}) > 1)
    return [dataclasses.replace(c, named=differing[c.name]) if differing[c.name] else c for c in configs]
