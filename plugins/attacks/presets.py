"""``preset: authors``: an attack's params set to its authors' values wherever the grid leaves them unset."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from mibench.sdk import Params


class AuthorsPreset(Params):
    """Params whose ``preset: authors`` fills every field not given from :attr:`AUTHORS` (a field given wins)."""

    AUTHORS: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _authors_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "authors":
            return {**cls.AUTHORS, **data}
        return data
