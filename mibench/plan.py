"""Turning a resolved grid into a plan: the models to train and the attacks to run.

A *cell* is one (dataset, architecture, defense config, seed): one target model,
its shadow models and one attack job per attack. Train jobs are shared between
cells when they are the same job (a non-adaptive shadow pool serves every defense;
early-stopping configs that differ only in the released epoch share one training).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mibench.config.resolve import PluginConfig, ResolvedGrid
from mibench.jobs import AttackJob, TrainJob, derived_seed


@dataclass
class Cell:
    dataset: PluginConfig
    architecture: PluginConfig
    defense: PluginConfig
    seed: int
    target: tuple[str, Any]  # (train job key, release value)
    shadows: list[tuple[str, Any]]
    attacks: list[AttackJob] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.dataset.label} / {self.architecture.label} / {self.defense.label} / seed {self.seed}"


@dataclass
class Plan:
    train_jobs: dict[str, TrainJob]
    cells: list[Cell]

    @property
    def attack_jobs(self) -> list[AttackJob]:
        return [a for c in self.cells for a in c.attacks]

    def model_count(self) -> tuple[int, int]:
        """(targets, shadows) models to train, counting each released model once."""
        targets = sum(len(j.model_keys()) for j in self.train_jobs.values() if j.role == "target")
        shadows = sum(len(j.model_keys()) for j in self.train_jobs.values() if j.role != "target")
        return targets, shadows


def _training_identity(defense: PluginConfig) -> tuple[PluginConfig, Any]:
    """(config that identifies the training run, released value) of a defense config."""
    param = defense.info.cls.release_param
    if param is None:
        return defense, None
    default = defense.info.cls.Params.model_fields[param].default
    return defense.with_params(**{param: default}), getattr(defense.params, param)


def build_plan(resolved: ResolvedGrid) -> Plan:
    grid = resolved.grid
    jobs: dict[str, TrainJob] = {}
    releases: dict[str, list[Any]] = {}
    cells: list[Cell] = []

    def add_job(job: TrainJob, value: Any) -> str:
        key = job.key
        jobs.setdefault(key, job)
        if value is not None and value not in releases.setdefault(key, []):
            releases[key].append(value)
        return key

    shadow_count = grid.shadow.count if any(a.info.cls.needs_shadows for a in resolved.attacks) else 0
    for dataset in resolved.datasets:
        for architecture in resolved.architectures:
            training = grid.training.for_architecture(architecture.name)
            for defense in resolved.defenses:
                for seed in grid.seeds:
                    identity, value = _training_identity(defense)
                    target = TrainJob(dataset, architecture, identity, training, grid.split_seed, "target", seed)
                    shadow_defense = resolved.shadow_defense or defense
                    s_identity, s_value = _training_identity(shadow_defense)
                    shadows = []
                    for i in range(shadow_count):
                        sj = TrainJob(dataset, architecture, s_identity, training, grid.split_seed,
                                      f"shadow-{i}", derived_seed(seed, "shadow", i))
                        shadows.append((add_job(sj, s_value), s_value))
                    cell = Cell(dataset, architecture, defense, seed, (add_job(target, value), value), shadows)
                    cells.append(cell)

    # Jobs that release several checkpoints learn every value asked of them.
    for key, values in releases.items():
        jobs[key] = replace(jobs[key], release_values=tuple(sorted(values)))

    for cell in cells:
        target_job = jobs[cell.target[0]]
        target = (target_job, target_job.model_key(cell.target[1]))
        shadows = tuple((jobs[k], jobs[k].model_key(v)) for k, v in cell.shadows)
        for attack in resolved.attacks:
            cell.attacks.append(AttackJob(attack, target, shadows if attack.info.cls.needs_shadows else (), cell.seed))
    return Plan(jobs, cells)
