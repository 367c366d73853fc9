"""What a protocol is: one strategy object that the planner, the jobs and the row layer call.

A :class:`Protocol` is a frozen dataclass built from the grid (:meth:`Protocol.from_grid`)
and carried by every :class:`~mibench.engine.models.TrainingRun` of the run, so a job
in a worker process knows its splits without the grid. Its parts, in the order a run
meets them:

- **validation**: :meth:`Protocol.check` (what each attack needs, what the protocol
  refuses), called by :func:`mibench.config.resolve.resolve` with every other problem;
- **splits**: :meth:`Protocol.build_splits` (a :class:`Splits` per dataset pool and
  split seed), their key inputs (:meth:`Protocol.splits_inputs`) and the part of a
  model key the protocol adds (:meth:`Protocol.identity`: the splits' code, a layout);
- **plan**: :meth:`Protocol.cell`, the models a cell trains and which attack runs on
  which target with which references;
- **attack view**: :meth:`Splits.attack_view <mibench.engine.protocols.splits.Splits.attack_view>`,
  the fields of the attack context that depend on the design (population samples,
  how references are balanced), with the splits because both shape the scores;
- **rows**: :meth:`Protocol.rows`, how a cell's attack jobs become result rows.

To add a protocol, subclass it, register it (``Registry.add_protocol``) and name it
in a grid's ``protocol:``; nothing in the engine changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from mibench.config.errors import Problem
from mibench.config.plugin_config import PluginConfig
from mibench.engine.protocols.splits import Splits
from mibench.sdk import Pool, ReferenceNeeds

if TYPE_CHECKING:
    from mibench.config.grid import Grid
    from mibench.config.resolve import ResolvedGrid
    from mibench.engine.models import ModelRef
    from mibench.engine.plan import Cell, CellSpec, RunBook


@dataclass(frozen=True)
class Assignment:
    """One attack job to plan: ``attack`` against ``target`` with ``references`` as its reference models."""

    attack: PluginConfig
    target: "ModelRef"
    references: tuple["ModelRef", ...]


@dataclass(frozen=True)
class Protocol:
    """Base of the protocol strategies; see the module docstring for its parts."""

    name: ClassVar[str] = ""
    splits_type: ClassVar[type[Splits]] = Splits  # the class whose code makes the splits (in every model key)
    accepts_canaries: ClassVar[bool] = False  # whether ``pool.canaries`` may be set (:meth:`with_canaries`)

    # ------------------------------------------------------------------ the grid

    @classmethod
    def from_grid(cls, grid: "Grid") -> "Protocol":
        raise NotImplementedError

    @classmethod
    def check(cls, grid: "Grid", attacks: Sequence[PluginConfig]) -> list[Problem]:
        """Problems of ``grid`` under this protocol (one per line): what attacks need that it cannot give."""
        return []

    def with_canaries(self, canaries: PluginConfig, grid: "Grid") -> "Protocol":
        """This protocol with the grid's ``pool.canaries`` planted (only where :attr:`accepts_canaries`)."""
        raise NotImplementedError

    def check_datasets(self, datasets: Sequence[PluginConfig]) -> tuple[list[Problem], list[str]]:
        """(problems, warnings) of this protocol on the grid's datasets, known from their shapes alone."""
        return [], []

    def describe(self, grid: "Grid") -> str:
        """One line for ``mibench validate``: the protocol and its models."""
        return self.name

    def attack_need(self, need: ReferenceNeeds) -> str:
        """One phrase: what an attack with ``need`` gets of reference models under this protocol."""
        raise NotImplementedError

    # -------------------------------------------------------------------- splits

    def identity(self) -> dict[str, Any]:
        """What this protocol adds to every model key beside its role: its splits' code (and its layout, if any)."""
        return {"splits_code": self.splits_type.code()}

    def splits_inputs(self) -> dict[str, Any]:
        """What this protocol adds to the key of a dataset's splits job."""
        return {}

    def build_splits(self, pool_size: int, split_seed: int) -> Splits:
        """The splits of a pool of ``pool_size`` samples (an instance of :attr:`splits_type`)."""
        raise NotImplementedError

    def prepare_pool(self, pool: Pool, splits: Splits) -> Pool:
        """The pool every model of the protocol trains and is attacked on: the dataset's (a canary audit adds rows)."""
        return pool

    def training_samples(self, pool_size: int) -> int:
        """About how many samples one model trains on (the compute estimate's count)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------- plan

    def cell(self, book: "RunBook", spec: "CellSpec", resolved: "ResolvedGrid") -> tuple[list["ModelRef"], list[Assignment]]:
        """The cell's target models (added to ``book``) and its attack jobs, in run order."""
        raise NotImplementedError

    # --------------------------------------------------------------- attack view

    # ---------------------------------------------------------------------- rows

    def row_config(self, grid: "Grid") -> dict[str, Any]:
        """What this protocol adds to a row's config (and so its config hash)."""
        return {}

    def rows(self, cell: "Cell", builder: Any) -> tuple[list[Any], list[Any]]:
        """(the cell's rows, one per attack config; its per-target rows, if it has several targets).

        ``builder`` is the run's :class:`mibench.report.rows.RowBuilder`, which makes each row.
        """
        return [builder.attack_row(cell, group[0]) for group in cell.attack_groups()], []
