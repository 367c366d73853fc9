"""Config problems, each reported as one line: ``file:line: dotted.path: message``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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
