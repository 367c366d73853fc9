"""Config problems, each reported as one line: ``file:line: dotted.path: message``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    from pydantic import ValidationError

Path_ = tuple[str | int, ...]


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
        super().__init__("\n".join(p.format(filename) for p in self.problems))


def describe(err: dict[str, Any]) -> str:
    """One pydantic error in mibench's words."""
    msg = err["msg"]
    if err["type"] in {"missing", "extra_forbidden"}:
        return "field required" if err["type"] == "missing" else "unknown key"
    if "input" in err and not isinstance(err["input"], (dict, list)):
        return f"{msg} (got {err['input']!r})"
    return msg


class Lines(Protocol):
    """Where a path of the document starts (mibench.config.yamlfile.LineMap)."""

    def line(self, path: Path_) -> int | None: ...


def pydantic_problems(exc: ValidationError, prefix: Path_, lines: Lines) -> list[Problem]:
    """Every error of a pydantic validation, located in the file."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = (*prefix, *loc)
        out.append(Problem(path, describe(err), lines.line(path)))
    return out
