"""Reading YAML together with the line of every key and list item, refusing hostile files early.

A grid file is refused before anything is built from it when it is not a regular file
(a device such as /dev/zero, a FIFO: their size says nothing and reading them never
ends), when it is larger than ``MAX_BYTES`` (at most that many bytes plus one are read,
whatever ``stat`` says), when a number has more digits than Python converts, when aliases would expand it to more than ``MAX_NODES`` nodes (a
"billion laughs" file is a few hundred bytes that expand to 10^9), or when a mapping
repeats a key (YAML keeps the last value silently; a grid that says ``seeds:`` twice
is a mistake).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from mibench.config.errors import ConfigError, Path_, Problem

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DIGITS = 4_300  # Python's int conversion limit (sys.get_int_max_str_digits)
INT_TAG = "tag:yaml.org,2002:int"


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


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document once every alias is expanded (memoised per node: linear in the file)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_NODES + 1  # a node inside itself (a recursive alias) expands forever
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        total = 1
    sizes[key] = min(total, MAX_NODES + 1)
    return sizes[key]


def _duplicate_keys(node: yaml.Node, path: Path_, seen: set[int], out: list[Problem]) -> None:
    """A problem for every key that a mapping repeats, naming both lines (each node visited once)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first:
                out.append(Problem((*path, key), f"key repeated on lines {first[key]} and {line}; "
                                                 "give it once", line))
            else:
                first[key] = line
            _duplicate_keys(value_node, (*path, key), seen, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, (*path, i), seen, out)
    elif node.tag == INT_TAG and len(node.value) > MAX_DIGITS:
        out.append(Problem(path, f"is a number of {len(node.value):,} digits; at most {MAX_DIGITS:,} are read",
                           node.start_mark.line + 1))


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
    """The document at ``path`` and its line map; a missing, hostile or bad file is a ConfigError."""
    path = Path(path).expanduser()
    name = str(path)
    too_big = Problem((), f"file is larger than {MAX_BYTES:,} bytes, the most a grid file may have")
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(name, [Problem((), "is a directory, not a grid file")])
        if not stat.S_ISREG(mode):
            raise ConfigError(name, [Problem((), "is not a regular file (a device, FIFO or socket); "
                                                 "a grid must be a file")])
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(name, [too_big])
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # whatever stat said: a file can grow, or lie
        if len(raw) > MAX_BYTES:
            raise ConfigError(name, [too_big])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(name, [Problem((), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, [Problem((), f"cannot read file: {exc}")]) from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                if _expanded_size(node, {}) > MAX_NODES:
                    raise ConfigError(name, [Problem((), f"aliases expand the document to more than {MAX_NODES:,} "
                                                         "nodes; write it out without nested aliases", 1)])
                duplicates: list[Problem] = []
                _duplicate_keys(node, (), set(), duplicates)
                if duplicates:
                    raise ConfigError(name, duplicates)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        raise ConfigError(name, [Problem((), f"YAML syntax error: {reason}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, [Problem((), f"YAML syntax error: {' '.join(str(exc).split())}")]) from None
    except RecursionError:
        raise ConfigError(name, [Problem((), "YAML nests too deeply")]) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, LineMap(lines)
