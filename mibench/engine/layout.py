"""The one owner of a run directory's layout: every path the runner, reports and CLI use.

    <run>/run.json          provenance: grid, versions, code digests, device, plan
    <run>/results.csv       one row per target x attack
    <run>/leaderboard.csv   one row per dataset x architecture x defense config
    <run>/errors.log        tracebacks of failed jobs
    <run>/plots/            figures drawn from the stored outputs
    <run>/store/            content-addressed job outputs (models, predictions, attacks, splits)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mibench.engine.store import Store


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def leaderboard_csv(self) -> Path:
        return self.root / "leaderboard.csv"

    @property
    def errors_log(self) -> Path:
        return self.root / "errors.log"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    def store(self) -> Store:
        return Store(self.store_dir)
