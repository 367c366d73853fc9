"""Turning a resolved grid into a plan: a graph of jobs, grouped into cells.

A *cell* is one (dataset, architecture, defense config, seed): its target models,
their reference models and the attack jobs on them; its results are one row per
attack. Which models a cell trains and which attack runs on which target with which
references is the grid's protocol's to say (:meth:`Protocol.cell
<mibench.engine.protocols.base.Protocol.cell>`); this module walks the grid, keeps
every training run once (:class:`RunBook`) and makes the jobs. Jobs are shared
between cells when they are the same job (a non-adaptive shadow pool serves every
defense; early-stopping configs that differ only in the released epoch share one
training run). :meth:`Plan.cell_jobs` lists a cell's jobs in the order the serial
executor runs them, dependencies first.

What an attack needs of reference models comes only from its ``needs(params)``
declaration: whether it uses any, and how they train (the grid's choice, always
like the target, or always plainly).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mibench.config.plugin_config import PluginConfig
from mibench.config.resolve import ResolvedGrid, needs_of
from mibench.engine.jobs import AttackJob, Job, PredictJob, SplitsJob, TrainJob
from mibench.engine.models import ModelRef, TrainingRun
from mibench.sdk import TrainingConfig


@dataclass(frozen=True)
class CellSpec:
    """One cell of the grid before its models exist: what it trains, with which seeds."""

    dataset: PluginConfig
    architecture: PluginConfig
    defense: PluginConfig
    seed: int
    training: TrainingConfig
    split_seed: int


@dataclass
class Cell:
    dataset: PluginConfig
    architecture: PluginConfig
    defense: PluginConfig
    seed: int
    targets: list[ModelRef]  # the models the cell's attacks target (one, or a pool's every model)
    attacks: list[AttackJob] = field(default_factory=list)

    @property
    def target(self) -> ModelRef:
        """The cell's (first) target: what its rows' training config and provenance name."""
        return self.targets[0]

    def label(self) -> str:
        return f"{self.dataset.label} / {self.architecture.label} / {self.defense.label} / seed {self.seed}"

    def attack_groups(self) -> list[list[AttackJob]]:
        """The cell's attack jobs per attack config (one per target)."""
        groups: dict[PluginConfig, list[AttackJob]] = {}
        for job in self.attacks:
            groups.setdefault(job.attack, []).append(job)
        return list(groups.values())

    @property
    def shadows(self) -> list[ModelRef]:
        """Every reference model of the cell's attacks, each once, in order."""
        seen: dict[str, ModelRef] = {}
        for attack in self.attacks:
            for ref in attack.shadows:
                seen.setdefault(ref.key, ref)
        return list(seen.values())


@dataclass
class Plan:
    """The jobs by key, and the cells that group them into result rows."""

    jobs: dict[str, Job]
    cells: list[Cell]

    @property
    def train_jobs(self) -> dict[str, TrainingRun]:
        """Training runs by run key."""
        return {j.training_run.key: j.training_run for j in self.jobs.values() if isinstance(j, TrainJob)}

    @property
    def attack_jobs(self) -> list[AttackJob]:
        return [a for c in self.cells for a in c.attacks]

    def model_count(self) -> tuple[int, int]:
        """(targets, references) models to train, each released model once (a pool's models are targets)."""
        runs = self.train_jobs.values()
        shadows = sum(len(r.model_keys()) for r in runs if r.role.reference)
        return sum(len(r.model_keys()) for r in runs) - shadows, shadows

    def cell_jobs(self, cell: Cell) -> list[Job]:
        """The jobs a cell needs, dependencies first: splits, target, each shadow, predictions, attacks."""
        order: list[Job] = []
        seen: set[str] = set()

        def add(key: str) -> None:
            if key in seen:
                return
            job = self.jobs[key]
            for dep in job.deps:
                add(dep)
            seen.add(key)
            order.append(job)

        for target in cell.targets:
            add(train_key(target))
        for ref in cell.shadows:
            add(predict_key(ref))
        for target in cell.targets:
            add(predict_key(target))
        for attack in cell.attacks:
            add(attack.key)
        return order

    def order(self) -> list[Job]:
        """Every job once, dependencies first: cell by cell (:meth:`cell_jobs`), then any job no cell names."""
        seen: dict[str, Job] = {}
        for cell in self.cells:
            for job in self.cell_jobs(cell):
                seen.setdefault(job.key, job)

        def add(key: str) -> None:
            if key not in seen:
                for dep in self.jobs[key].deps:
                    add(dep)
                seen[key] = self.jobs[key]

        for key in self.jobs:
            add(key)
        return list(seen.values())

    def dependents(self) -> dict[str, list[str]]:
        """Job key -> keys of the jobs that depend on it directly."""
        out: dict[str, list[str]] = {k: [] for k in self.jobs}
        for key, job in self.jobs.items():
            for dep in job.deps:
                out[dep].append(key)
        return out


def train_key(ref: ModelRef) -> str:
    return "train:" + ref.run.key


def predict_key(ref: ModelRef) -> str:
    return "predict:" + ref.key


def training_identity(defense: PluginConfig) -> tuple[PluginConfig, Any]:
    """(config that identifies the training run, released value) of a defense config."""
    param = defense.info.cls.release_param
    if param is None:
        return defense, None
    default = defense.info.cls.Params.model_fields[param].default
    return defense.with_params(**{param: default}), getattr(defense.params, param)


def shadow_defense(resolved: ResolvedGrid, attack: PluginConfig, target_defense: PluginConfig) -> PluginConfig:
    """The defense config the shadows of ``attack`` train with, for a target trained with ``target_defense``."""
    training = needs_of(attack).training
    if training == "like-target":
        return target_defense
    if training == "plain" and resolved.plain_defense is not None:
        return resolved.plain_defense
    return resolved.shadow_defense or target_defense


class RunBook:
    """A plan's training runs, each once, with every checkpoint value asked of it, and their jobs."""

    def __init__(self) -> None:
        self.runs: dict[str, TrainingRun] = {}
        self.releases: dict[str, list[Any]] = {}

    def add(self, run: TrainingRun, value: Any) -> ModelRef:
        self.runs.setdefault(run.key, run)
        if value is not None and value not in self.releases.setdefault(run.key, []):
            self.releases[run.key].append(value)
        return ModelRef(run, value)

    def close(self) -> None:
        """Runs that release several checkpoints learn every value asked of them."""
        for key, values in self.releases.items():
            self.runs[key] = replace(self.runs[key], release_values=tuple(sorted(values)))

    def final(self, ref: ModelRef) -> ModelRef:
        """``ref`` with its run as closed (its release values set)."""
        return ModelRef(self.runs[ref.run.key], ref.release_value)

    def jobs(self, splits_key: dict[PluginConfig, str]) -> dict[str, Job]:
        """A train job per run and a predict job per released model; ``splits_key``: the splits job per dataset."""
        jobs: dict[str, Job] = {}
        for run in self.runs.values():
            jobs["train:" + run.key] = TrainJob(run, splits_key[run.dataset])
            for ref in run.models():
                jobs[predict_key(ref)] = PredictJob(ref, "train:" + run.key)
        return jobs


def build_plan(resolved: ResolvedGrid) -> Plan:
    """Every cell of the grid, its models and attack jobs as the grid's protocol lays them out."""
    grid, protocol = resolved.grid, resolved.protocol
    book = RunBook()
    split_jobs = {d: SplitsJob(d, grid.split_seed, protocol) for d in resolved.datasets}
    pending = []
    for dataset in resolved.datasets:
        for architecture in resolved.architectures:
            training = grid.training.for_architecture(architecture.name)
            for defense in resolved.defenses:
                for seed in grid.seeds:
                    spec = CellSpec(dataset, architecture, defense, seed, training, grid.split_seed)
                    targets, assignments = protocol.cell(book, spec, resolved)
                    pending.append((Cell(dataset, architecture, defense, seed, targets), assignments))
    book.close()
    jobs: dict[str, Job] = {j.key: j for j in split_jobs.values()}
    jobs.update(book.jobs({d: j.key for d, j in split_jobs.items()}))
    for cell, assignments in pending:
        cell.targets = [book.final(t) for t in cell.targets]
        for a in assignments:
            references = tuple(book.final(r) for r in a.references)
            target = book.final(a.target)
            job = AttackJob(a.attack, target, references, cell.seed,
                            tuple(predict_key(r) for r in (*references, target)))
            jobs[job.key] = job
            cell.attacks.append(job)
    return Plan(jobs, [cell for cell, _ in pending])
