"""Plugin parameters: every plugin's ``Params`` is a pydantic model derived from :class:`Params`.

:func:`location` and :func:`tuning` mark params that cannot change a result (where the
data lies, a batch size for predictions): they stay out of labels and of the hashes
that key trained models and attack outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Base of every plugin's parameter model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


NEUTRAL = {"affects_results": False}


def location(default: Any, description: str) -> Any:
    """A param that says where to find or put something (a data folder, a download flag).

    It cannot change a result, so it stays out of labels and of the hashes that
    key trained models: moving the data does not retrain anything.
    """
    return Field(default, description=description, json_schema_extra=NEUTRAL)


def tuning(default: Any, description: str, **bounds: Any) -> Any:
    """A param that changes speed or memory only (a batch size for predictions, a chunk size).

    Like :func:`location`, it stays out of labels and hashes: changing it reuses
    every trained model and attack result.
    """
    return Field(default, description=description, json_schema_extra=NEUTRAL, **bounds)


def result_dump(model: BaseModel) -> dict[str, Any]:
    """``model`` as JSON without the fields declared with :func:`location` or :func:`tuning`."""
    fields = type(model).model_fields
    neutral = {k for k, f in fields.items() if (f.json_schema_extra or {}).get("affects_results") is False}
    return model.model_dump(mode="json", exclude=neutral)


class Plugin:
    """Common base: a registered name, a params model and validated params."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring, for ``mibench plugins``."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
