"""What every subcommand shares: loading plugins and grids, and turning errors into exit code 2."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import click

from mibench.config.errors import ConfigError
from mibench.config.resolve import ResolvedGrid, load_grid
from mibench.engine.layout import RunDirError
from mibench.registry.loading import get_registry
from mibench.registry.table import PluginError, Registry

USAGE_ERROR = 2
F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = USAGE_ERROR) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def reports_errors(func: F) -> F:
    """Print config and plugin errors as their one-line messages, exit 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(f"error: {exc}" if len(exc.problems) == 1 else "errors:\n" + str(exc))
        except PluginError as exc:
            fail(f"error: {exc}")
        except RunDirError as exc:
            fail(f"error: {exc}")

    return wrapper  # type: ignore[return-value]


def registry() -> Registry:
    return get_registry()


def grid(path: str, device: str | None = None) -> ResolvedGrid:
    return load_grid(path, registry(), device)
