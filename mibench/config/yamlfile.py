"""Reading YAML together with the line of every key and list item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mibench.config.errors import ConfigError, Path_, Problem


class LineMap:
    """Maps a path in the document to the 1-based line where it starts."""

    def __init__(self, lines: dict[Path_, int | None]) -> None:
        self._lines = lines

    def unlocated(self, path: Path_) -> "LineMap":
        """A copy where ``path`` has no line (a value given on the command line, not in the file)."""
        return LineMap({**self._lines, tuple(path): None})

    def line(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest ancestor that the file spells out."""
        path = tuple(path)
        while True:
            if path in self._lines:
                return self._lines[path]
            if not path:
                return None
            path = path[:-1]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """The document at ``path`` and its line map; a missing file or bad YAML is a ConfigError."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, [Problem((), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, [Problem((), f"cannot read file: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        raise ConfigError(name, [Problem((), f"YAML syntax error: {reason}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, [Problem((), f"YAML syntax error: {exc}")]) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, LineMap(lines)
