"""The one owner of a run directory's layout: every path the runner, reports and CLI use.

    <run>/run.json          provenance: grid, versions, code digests, device, plan
    <run>/results.csv       one row per target x attack (pool protocol: per pool x attack, pooled)
    <run>/per_target.csv    pool protocol: one row per target model x attack
    <run>/leaderboard.csv   one row per dataset x architecture x defense config
    <run>/errors.log        tracebacks of failed jobs
    <run>/jobs.jsonl        one line per finished job: kind, label, seconds, worker, ok
    <run>/plots/            figures drawn from the stored outputs
    <run>/store/            content-addressed job outputs (models, predictions, attacks, splits)
    <run>/.mibench-run      marks the directory as a mibench run directory

A run writes only into an empty or missing directory, or one that is already a run
directory: ``output: /`` or ``output: ~`` (non-empty, unmarked) is refused, never
filled with results.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mibench.engine.store import Store


MARKER = ".mibench-run"


class RunDirError(Exception):
    """The output directory cannot hold a run; the message says which path and why, in one line."""


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
    def per_target_csv(self) -> Path:
        """Pool protocol: one row per target model x attack (results.csv pools them)."""
        return self.root / "per_target.csv"

    @property
    def exposed_csv(self) -> Path:
        return self.root / "exposed.csv"

    @property
    def leaderboard_csv(self) -> Path:
        return self.root / "leaderboard.csv"

    @property
    def errors_log(self) -> Path:
        return self.root / "errors.log"

    @property
    def jobs_log(self) -> Path:
        return self.root / "jobs.jsonl"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def store(self) -> Store:
        return Store(self.store_dir)

    def is_run_dir(self) -> bool:
        """A directory a mibench run made (the marker; or run.json, from runs before the marker)."""
        return self.marker.is_file() or self.run_json.is_file()

    def run_files(self) -> list[Path]:
        """The files a run writes or appends to at the top of its directory."""
        return [self.results_csv, self.per_target_csv, self.leaderboard_csv, self.exposed_csv, self.errors_log,
                self.jobs_log, self.run_json, self.marker, self.root / "report.html"]

    def check(self) -> None:
        """Refuse a path that is a file, a non-empty directory that is not a run directory, or a run
        directory whose own files are symbolic links (a write would land wherever they point)."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise RunDirError(f"output {root} is a file, not a directory")
        links = [p.name for p in self.run_files() if p.is_symlink()]
        if links:
            what = "is a symbolic link" if len(links) == 1 else "are symbolic links"
            raise RunDirError(f"output {root}: {', '.join(links)} {what}; a run writes its own files there and "
                              "follows no link: remove them")
        if root.is_dir() and not self.is_run_dir():
            try:
                empty = next(root.iterdir(), None) is None
            except OSError as exc:
                raise RunDirError(f"output {root}: cannot read it: {exc.strerror or exc}") from None
            if not empty:
                raise RunDirError(f"output {root} is a non-empty directory that is not a mibench run directory "
                                  f"(no {MARKER}); choose a new or empty directory")

    def claim(self) -> None:
        """Check the directory, create it, and mark it as a run directory."""
        self.check()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):  # can files be created here at all?
                pass
            if not self.marker.exists():
                self.marker.write_text("This directory holds a mibench run (see run.json).\n")
        except OSError as exc:
            raise RunDirError(f"output {self.root}: cannot write there: {exc.strerror or exc}") from None
