"""Config problems, each reported as one line: ``file:line: dotted.path: message``."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    from pydantic import ValidationError

Path_ = tuple[str | int, ...]

MAX_PROBLEMS = 20  # lines reported; the rest are counted ("and N more problems")
MAX_QUOTED = 80  # characters of a bad value quoted back; longer ones are cut, with their length


def dotted(path: Path_) -> str:
    """('defenses', 1, 'params', 'alpha') -> 'defenses[1].params.alpha'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    path: Path_
    message: str
    line: int | None = None

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {dotted(self.path)}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a grid file; ``str()`` gives one line per problem."""

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        lines = [p.format(filename) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            lines.append(f"{filename}: and {len(self.problems) - MAX_PROBLEMS:,} more problems")
        super().__init__("\n".join(lines))


def quoted(value: Any) -> str:
    """``repr(value)``, cut to ``MAX_QUOTED`` characters (a 500 KB string is not echoed back whole)."""
    text = repr(value)
    if len(text) <= MAX_QUOTED:
        return text
    return f"{text[:MAX_QUOTED]}... ({len(text):,} characters)"


def describe(err: dict[str, Any]) -> str:
    """One pydantic error in mibench's words."""
    msg = err["msg"]
    if err["type"] in {"missing", "extra_forbidden"}:
        return "field required" if err["type"] == "missing" else "unknown key"
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return f"{msg} (got {quoted(err['input'])})"
    return msg


class Lines(Protocol):
    """Where a path of the document starts (mibench.config.yamlfile.LineMap)."""

    def line(self, path: Path_) -> int | None: ...


def _block_model(model: Any, loc: tuple) -> Any:
    """The pydantic model of the block at ``loc`` inside ``model`` (None where it is not one: a list, a dict,
    a plugin's free-form params); list indexes and dict keys on the way are stepped over."""
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _model_in(annotation: Any) -> Any:
    """The first pydantic model class within ``annotation`` (``X``, ``X | None``, ``list[X]``), or None."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def unknown_key(model: Any, loc: tuple) -> str:
    """'unknown key' with the nearest valid key and every valid key of its block, where ``model`` knows them."""
    block = _block_model(model, loc[:-1]) if model is not None else None
    keys = list(getattr(block, "model_fields", {}))
    if not keys:
        return "unknown key"
    near = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown key; {hint}valid keys: {', '.join(keys)}"


def pydantic_problems(exc: ValidationError, prefix: Path_, lines: Lines, model: Any = None) -> list[Problem]:
    """Every error of a pydantic validation of ``model`` (a pydantic class, for the valid keys), located in the file."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = (*prefix, *loc)
        message = unknown_key(model, loc) if err["type"] == "extra_forbidden" else describe(err)
        out.append(Problem(path, message, lines.line(path)))
    return out
