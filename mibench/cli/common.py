"""What every subcommand shares: loading plugins and grids, and turning errors into exit codes.

Exit codes: 0 done, 1 a run with failed cells, 2 a usage or config error, 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM)
(Ctrl-C). This module imports nothing heavy: a command imports torch, the plugins and the
engine inside its function, after the grid file has passed its schema, so a malformed
grid is refused in well under a second.
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, TypeVar

import click

from mibench.config.errors import ConfigError, Problem, pydantic_problems

if TYPE_CHECKING:
    from mibench.config.resolve import ResolvedGrid
    from mibench.registry.table import Registry

USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, the shell's code for a command stopped by Ctrl-C
TERMINATED = 143  # 128 + SIGTERM: what timeout, Slurm and Kubernetes send to stop a job


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that a run stops the same way (workers killed, work kept)."""


@contextmanager
def sigterm_stops():
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (the previous handler comes back after)."""
    import signal
    import threading

    def handler(signum, frame):
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
F = TypeVar("F", bound=Callable)

# Errors that a command reports as their one-line message (exit 2): (module, class name).
# They are looked up in sys.modules rather than imported here, which would import
# torch: an exception of one of these classes exists only once its module is loaded.
ONE_LINE_ERRORS = (("mibench.registry.table", "PluginError"), ("mibench.engine.layout", "RunDirError"),
                   ("mibench.execution.executor", "ExecutionError"))


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def interrupted(output_dir: Path | None = None, exc: BaseException | None = None) -> NoReturn:
    """Ctrl-C (exit 130) or SIGTERM (exit 143): one line on stderr, no traceback."""
    word, code = ("terminated", TERMINATED) if isinstance(exc, Terminated) else ("interrupted", INTERRUPTED)
    if output_dir is None:
        fail(word, code)
    fail(f"{word}; finished work is kept in {output_dir} and a rerun resumes it", code)


def _one_line_error(exc: Exception) -> bool:
    for module_name, class_name in ONE_LINE_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return True
    return False


def reports_errors(func: F) -> F:
    """Print config and plugin errors as their one-line messages, exit 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(f"error: {exc}" if len(exc.problems) == 1 else "errors:\n" + str(exc))
        except Exception as exc:
            if not _one_line_error(exc):
                raise
            fail(f"error: {exc}")

    return wrapper  # type: ignore[return-value]


def registry() -> Registry:
    from mibench.registry.loading import get_registry

    return get_registry()


def check_schema(path: str, device: str | None = None) -> None:
    """Raise the ConfigError of a grid file that is bad by its text or schema alone, before plugins load.

    A file that cannot be read, is hostile (too large, an alias bomb, a repeated key),
    is not YAML, or breaks the grid schema gets the same lines that the full
    resolution gives it, without its plugin problems, which need the plugins.
    """
    from pydantic import ValidationError

    from mibench.config.grid import Grid
    from mibench.config.yamlfile import load_yaml

    data, lines = load_yaml(path)
    if device is not None and isinstance(data, dict):
        data, lines = {**data, "device": device}, lines.unlocated(("device",))
    if not isinstance(data, dict):
        raise ConfigError(str(path), [Problem((), "a grid file must be a mapping of keys (name, datasets, ...)", 1)])
    try:
        Grid.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, (), lines, Grid)
        raise ConfigError(str(path), sorted(problems, key=lambda p: p.line or 0)) from None


def grid(path: str, device: str | None = None) -> ResolvedGrid:
    """The resolved grid: the schema is checked first, then the plugins load and everything is checked."""
    check_schema(path, device)
    from mibench.config.resolve import load_grid

    return load_grid(path, registry(), device)
