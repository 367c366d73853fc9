"""Digests of the code that produces a result, so that a cached result follows its code.

A plugin's digest covers the module that defines its class and every module of its
own code that it imports, directly or not (found by reading the import statements,
not by running anything): for an installed distribution, the modules of the
plugin's top-level package; for plugins in a plain directory on the path, the
modules that live in that directory. The engine's digest covers the SDK
and the engine's modules: everything that runs while a model trains or an attack
scores, and nothing that only reports. Each module counts by its syntax tree, so
editing a comment, a blank line or the layout changes no digest; editing a
docstring or any code does.

Model keys and attack-output keys include these digests: editing a defense's loss
retrains that defense's models and nothing else, editing an attack re-runs that
attack only, and editing the engine recomputes everything.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

ENGINE_PACKAGES = ("mibench.sdk", "mibench.engine")
ENGINE_TOP_LEVEL = {"mibench"}  # covered by the engine digest, never by a plugin's


@lru_cache(maxsize=None)
def _source_digest(path: str, mtime_ns: int, size: int) -> str:
    """Digest of a Python file's syntax tree (comments and layout do not count)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        tree = ast.dump(ast.parse(text), include_attributes=False)
    except SyntaxError:
        tree = text
    return hashlib.sha256(tree.encode()).hexdigest()


def file_digest(path: Path) -> str:
    stat = path.stat()
    return _source_digest(str(path), stat.st_mtime_ns, stat.st_size)


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if file is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        file = spec.origin if spec is not None else None
    if not file or not file.endswith(".py"):
        return None
    return Path(file)


def _imported_modules(name: str, path: Path) -> set[str]:
    """Absolute names of the modules ``path`` (module ``name``) imports, relative imports resolved."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # ``from pkg import submodule``
    return found


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


@lru_cache(maxsize=None)
def _top_level_dir(top: str) -> Path | None:
    """The directory a top-level module or package is found in (its sys.path entry)."""
    path = _module_file(top)
    if path is None:
        return None
    return path.parent.parent if path.name == "__init__.py" else path.parent


def module_closure(name: str, within: str | tuple[str, ...] | None = None) -> dict[str, Path]:
    """``name`` and every module it imports, transitively, that belongs to the same code.

    ``within`` names the packages that count. By default: the top-level package of
    ``name`` when a distribution installed it; otherwise (a plain directory on the
    path) every top-level module or package in the same directory.
    """
    top = name.split(".")[0]
    if within is not None:
        prefixes = (within,) if isinstance(within, str) else within

        def inside(module: str) -> bool:
            return any(module == p or module.startswith(p + ".") for p in prefixes)
    elif top in _distributions():
        def inside(module: str) -> bool:
            return module.split(".")[0] == top
    else:
        home = _top_level_dir(top)

        def inside(module: str) -> bool:
            first = module.split(".")[0]
            return first == top or (home is not None and first not in ENGINE_TOP_LEVEL
                                    and first not in sys.builtin_module_names and _top_level_dir(first) == home)

    seen: dict[str, Path] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or not inside(current):
            continue
        path = _module_file(current)
        if path is None:
            continue
        seen[current] = path
        todo.extend(m for m in _imported_modules(current, path) if inside(m) and m not in seen)
    return seen


def code_digest(modules: dict[str, Path], length: int = 16) -> str:
    """One digest of several modules' syntax trees, keyed by module name."""
    h = hashlib.sha256()
    for name in sorted(modules):
        h.update(f"{name}:{file_digest(modules[name])}\n".encode())
    return h.hexdigest()[:length]


def plugin_digest(cls: type) -> str:
    """Digest of the code a plugin class runs: its module and what that imports within its package."""
    return code_digest(module_closure(cls.__module__))


@lru_cache(maxsize=1)
def engine_digest() -> str:
    """Digest of the SDK and the engine: the mibench code that runs while results are made."""
    modules: dict[str, Path] = {}
    for package in ENGINE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for path in sorted(Path(root).rglob("*.py")):
                rel = path.relative_to(root).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                modules[".".join([package, *parts])] = path
    return code_digest(modules)


def clear_caches() -> None:
    """Forget the engine digest (tests that edit engine files)."""
    engine_digest.cache_clear()
