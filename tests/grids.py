"""The one way the tests write small digits grids and run them.

``digits_grid()`` with no arguments is the suite's standard grid (an MLP on the
8x8 digits, CE, three threshold attacks, two shadows); each keyword replaces one of
its lines. ``run_grid`` resolves a grid text and runs it, returning the summary, the
log lines and the results table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd


def digits_grid(*, name: str = "digits-test", seeds: str = "[0]", datasets: str = "[digits]",
                architectures: str = "[{name: mlp, params: {hidden: [64]}}]", defenses: str = "[ce]",
                attacks: str = "[loss, entropy, m-entropy]", epochs: int = 12, shadow: int = 2,
                shadow_training: str | None = None, extra: str = "") -> str:
    """A digits grid; ``extra``: further top-level lines (protocol, pool, execution...)."""
    training = f", training: {shadow_training}" if shadow_training else ""
    return f"""
name: {name}
seeds: {seeds}
device: cpu
datasets: {datasets}
architectures: {architectures}
defenses: {defenses}
attacks: {attacks}
training:
  epochs: {epochs}
  batch_size: 64
  optimizer: {{name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0}}
shadow: {{count: {shadow}{training}}}
""" + extra


@dataclass
class Ran:
    """A finished test run: the runner's summary, what it logged, and where its tables are."""

    summary: Any
    out: Path
    lines: list[str] = field(default_factory=list)

    @property
    def results(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "results.csv")


def run_grid(write_grid: Callable[..., Path], registry, out: Path, text: str | None = None,
             log: list[str] | None = None, **runner: Any) -> Ran:
    """Write ``text`` (default: :func:`digits_grid`), resolve it with ``registry`` and run it into ``out``.

    ``runner``: keyword arguments of :class:`~mibench.runner.Runner` (``executor``, ``execution``).
    """
    from mibench.config.resolve import load_grid
    from mibench.runner import Runner

    lines = [] if log is None else log
    resolved = load_grid(write_grid(digits_grid() if text is None else text), registry)
    summary = Runner(resolved, registry, out, log=lines.append, **runner).run()
    return Ran(summary, out, lines)
