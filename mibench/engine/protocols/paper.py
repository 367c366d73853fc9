"""``protocol: paper`` (REFERENCE §1): one target per cell, offline shadows on the other half of the pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from mibench.config.errors import Problem
from mibench.config.plugin_config import PluginConfig
from mibench.config.resolve import needs_of
from mibench.config.seeds import shadow_seed
from mibench.engine.models import ModelRef, TrainingRun
from mibench.engine.plan import CellSpec, RunBook, shadow_defense, training_identity
from mibench.engine.protocols.base import Assignment, Protocol
from mibench.engine.protocols.splits import PaperSplits, Role
from mibench.sdk import ReferenceNeeds

HOW = {"grid": "as shadow.training says", "like-target": "like the target", "plain": "plainly (shadow.plain)"}


@dataclass(frozen=True)
class PaperProtocol(Protocol):
    """One target, ``shadow_count`` shadows per attack that uses them; one row per attack."""

    name: ClassVar[str] = "paper"
    splits_type: ClassVar[type[PaperSplits]] = PaperSplits
    shadow_count: int = 0

    @classmethod
    def from_grid(cls, grid) -> "PaperProtocol":
        return cls(grid.shadow.count)

    @classmethod
    def check(cls, grid, attacks: Sequence[PluginConfig]) -> list[Problem]:
        problems = []
        online = {}
        for a in attacks:
            if needs_of(a).mode == "online":
                online.setdefault(a.position, a)
        for position, a in sorted(online.items()):
            problems.append(Problem(("attacks", position), f"attack {a.label!r} needs online reference models "
                                    "(trained on half of the target's evaluation samples); 'protocol: paper' trains "
                                    "offline shadows only: use 'protocol: pool'"))
        needed = {a.label: needs_of(a).count for a in attacks if needs_of(a).uses_references}
        short = {label: n for label, n in needed.items() if grid.shadow.count < n}
        if short:
            names = ", ".join(f"{name} (at least {n})" if n > 1 else name for name, n in sorted(short.items()))
            problems.append(Problem(("shadow", "count"),
                                    f"must be >= {max(short.values())}: attacks {names} use shadow models"))
        return problems

    def describe(self, grid) -> str:
        return f"paper; shadows: {grid.shadow.count} per target, training {grid.shadow.training}"

    def attack_need(self, need: ReferenceNeeds) -> str:
        if not need.uses_references:
            return "the target alone"
        return f"at least {need.count} offline shadow model{'s' if need.count > 1 else ''}, trained {HOW[need.training]}"

    def splits_inputs(self) -> dict:
        return {"shadow_count": self.shadow_count}

    def build_splits(self, pool_size: int, split_seed: int) -> PaperSplits:
        return PaperSplits.build(pool_size, split_seed, self.shadow_count)

    def training_samples(self, pool_size: int) -> int:
        return pool_size // 4

    def cell(self, book: RunBook, spec: CellSpec, resolved) -> tuple[list[ModelRef], list[Assignment]]:
        def run(defense: PluginConfig, role: Role, seed: int) -> ModelRef:
            identity, value = training_identity(defense)
            return book.add(TrainingRun(spec.dataset, spec.architecture, identity, spec.training, spec.split_seed,
                                        role, seed, protocol=self), value)

        target = run(spec.defense, Role("target"), spec.seed)
        count = self.shadow_count if any(needs_of(a).uses_references for a in resolved.attacks) else 0
        assignments = []
        for attack in resolved.attacks:
            shadows: tuple[ModelRef, ...] = ()
            if needs_of(attack).uses_references:
                defense = shadow_defense(resolved, attack, spec.defense)
                shadows = tuple(run(defense, Role("shadow", i, reference=True), shadow_seed(spec.seed, i))
                                for i in range(count))
            assignments.append(Assignment(attack, target, shadows))
        return [target], assignments
