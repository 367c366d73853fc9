"""Digests of the code that produces a result, so that a cached result follows its code.

A plugin's digest covers the module that defines its class, every module of its own
code that it imports, directly or not (found by reading the import statements, not by
running anything), and the SDK modules those import (``from mibench.sdk import X``
counts the submodule that defines X): for an installed distribution, the modules of
the plugin's top-level package; for plugins in a plain directory on the path, the
modules that live in that directory. Each module counts by its syntax tree, so
editing a comment, a blank line or the layout changes no digest; editing a docstring
or any code does.

The engine's code is covered by *code paths* (:func:`code_path_digest`): an entry
module of the engine and every SDK and engine module it imports, transitively. A
model key covers the training path (``mibench.engine.training``: the trainer, batches,
objectives, splits, the store), a prediction the prediction path, an attack output
the attack path; none covers metrics, intervals, estimates, reports or the CLI, which
are recomputed from stored scores. So editing a defense's loss retrains that
defense's models and nothing else, editing an attack re-runs that attack only,
editing the trainer retrains everything, and editing the DeLong interval code
retrains and re-attacks nothing.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

ENGINE_PACKAGES = ("mibench.sdk", "mibench.engine")
SDK = "mibench.sdk"
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
            sources = _sdk_sources() if module == SDK else {}
            if sources and all(alias.name in sources for alias in node.names):
                # the SDK re-exports lazily: ``from mibench.sdk import X`` runs X's submodule only
                found.update(f"{SDK}.{sources[alias.name]}" for alias in node.names)
                continue
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # ``from pkg import submodule``
    return found


@lru_cache(maxsize=1)
def _sdk_sources() -> dict[str, str]:
    """The SDK's public names and the submodule defining each (importing mibench.sdk imports none of them)."""
    import mibench.sdk

    return dict(mibench.sdk._SOURCES)


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


def _with_sdk(modules: dict[str, Path]) -> dict[str, Path]:
    """``modules`` and the SDK modules they import, transitively."""
    out = dict(modules)
    sdk = _sdk_modules()
    for name, path in modules.items():
        for imported in _imported_modules(name, path):
            if imported in sdk and imported not in out:
                out.update(module_closure(imported, within=SDK))
    return out


@lru_cache(maxsize=1)
def _sdk_modules() -> frozenset[str]:
    """Names of the SDK's submodules, from its directory (nothing is imported)."""
    root = Path(__file__).resolve().parent.parent / "sdk"
    return frozenset(f"{SDK}.{p.stem}" for p in root.glob("*.py") if p.stem != "__init__")


def plugin_digest(cls: type) -> str:
    """Digest of the code a plugin class runs: its module, what that imports within its package, and the SDK it uses."""
    return code_digest(_with_sdk(module_closure(cls.__module__)))


@lru_cache(maxsize=None)
def code_path_digest(entry: str) -> str:
    """Digest of engine module ``entry`` and every SDK and engine module it imports, transitively."""
    modules = module_closure(entry, within=ENGINE_PACKAGES)
    if entry not in modules:
        raise ValueError(f"no engine module {entry!r}")
    return code_digest(modules)


def code_path_modules(entry: str) -> list[str]:
    """The modules :func:`code_path_digest` covers (for run.json and tests)."""
    return sorted(module_closure(entry, within=ENGINE_PACKAGES))


def clear_caches() -> None:
    """Forget the code-path digests (tests that edit engine files)."""
    code_path_digest.cache_clear()
