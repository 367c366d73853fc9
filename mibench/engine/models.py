"""What identifies a trained model: its training run and, for checkpoint defenses, the released value.

A :class:`TrainingRun` is one training of one defense config on one split; its key
hashes everything that can change the weights, code included (the plugins' own
code digests and the engine's, :mod:`mibench.registry.code`). A :class:`ModelRef`
names one released model of a run: the one type the plan, the jobs and the
attacks use to refer to a model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mibench.config.plugin_config import PluginConfig
from mibench.engine.store import stable_hash
from mibench.registry.code import code_path_digest
from mibench.sdk import Pool, TrainingConfig, result_dump


TRAINING_PATH = "mibench.engine.training"  # the engine module whose code path every model key covers


def build_model(architecture: PluginConfig, pool: Pool, device: torch.device) -> nn.Module:
    """A fresh network of ``architecture`` for ``pool``'s shape and classes, on ``device``."""
    return architecture.create().build(pool.input_shape, pool.num_classes).to(device)


@dataclass(frozen=True)
class TrainingRun:
    """One training of a target or a shadow with one defense config.

    For a defense with a ``release_param``, ``defense`` carries that param at its
    default and ``release_values`` lists the values to release: one training run,
    one released model per value.
    """

    dataset: PluginConfig
    architecture: PluginConfig
    defense: PluginConfig
    training: TrainingConfig
    split_seed: int
    role: Any  # a mibench.engine.protocols.splits.Role
    seed: int
    release_values: tuple[Any, ...] = ()
    protocol: Any = None  # the grid's mibench.engine.protocols.base.Protocol: whose splits the run trains on

    def identity(self) -> dict[str, Any]:
        if self.protocol is None:
            raise ValueError("a training run needs its protocol")
        return self.protocol.identity() | {
            "dataset": self.dataset.spec(),
            "split_seed": self.split_seed,
            "role": str(self.role),
            "architecture": self.architecture.spec(),
            "defense": self.defense.spec(),
            "training": result_dump(self.training),
            "seed": self.seed,
            "engine": code_path_digest(TRAINING_PATH),
        }

    @functools.cached_property
    def key(self) -> str:
        """The hash of :meth:`identity`; computed once per run object (a 64-model pool's attack jobs ask for
        every reference's key of every target: some 50,000 times a cell)."""
        return stable_hash(self.identity())

    def model_key(self, release_value: Any = None) -> str:
        if self.defense.info.cls.release_param is None:
            return self.key
        return stable_hash([self.key, release_value])

    def model_keys(self) -> list[str]:
        if self.defense.info.cls.release_param is None:
            return [self.key]
        return [self.model_key(v) for v in self.release_values]

    def models(self) -> list["ModelRef"]:
        if self.defense.info.cls.release_param is None:
            return [ModelRef(self)]
        return [ModelRef(self, v) for v in self.release_values]

    def label(self) -> str:
        return f"{self.role} {self.dataset.label}/{self.architecture.label}/{self.defense.label} seed {self.seed}"


@dataclass(frozen=True)
class ModelRef:
    """One released model: its training run and the released value (None unless a checkpoint defense)."""

    run: TrainingRun
    release_value: Any = None

    @property
    def key(self) -> str:
        return self.run.model_key(self.release_value)

    @property
    def role(self) -> Any:
        return self.run.role
