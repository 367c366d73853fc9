"""mibench's plugin SDK: the one import path for datasets, architectures, defenses and attacks.

Everything a plugin needs is importable from here, and only what is listed in
``__all__`` is public and stable: names are not removed or changed incompatibly
without a release that keeps a shim. The SDK imports nothing from the rest of
mibench, so a plugin cannot come to depend on the engine by accident.
docs/plugins.md documents every name below.

Names are imported on first use (PEP 562): ``import mibench.sdk.training_config``,
which the grid schema needs, does not import torch, so ``mibench validate`` refuses a
malformed grid before the heavy modules load. ``from mibench.sdk import X`` and
``from mibench.sdk import *`` work as for eager imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and import-linter; at run time __getattr__ imports on first use
    from mibench.sdk import hooks
    from mibench.sdk.architecture import Architecture
    from mibench.sdk.attack import (
        NO_SHADOWS,
        Attack,
        AttackContext,
        AttackOutput,
        ModelView,
        ReferenceRules,
        ShadowNeeds,
        ShadowView,
        ThresholdMode,
    )
    from mibench.sdk.batches import Normaliser, as_index, map_batches, model_batches, model_inputs, unit_inputs
    from mibench.sdk.dataset import Augment, DataShape, Dataset, DatasetParams, Pool
    from mibench.sdk.defense import Defense, LossDefense, TrainedModel, TrainingContext, feature_dim
    from mibench.sdk.hooks import hookimpl, hookspec
    from mibench.sdk.objective import Objective, ObjectiveSpec
    from mibench.sdk.outputs import class_log_odds, log_probs, softmax_entropy, true_class_prob
    from mibench.sdk.params import Params, Plugin, location, result_dump, tuning
    from mibench.sdk.progress import progress_bar
    from mibench.sdk.reference_attack import ReferenceAttack, Table
    from mibench.sdk.sampling import carve_reference, seeded_rng, stratified_subsample
    from mibench.sdk.threshold_attack import ThresholdAttack, ThresholdParams
    from mibench.sdk.thresholds import best_threshold, per_class_thresholds
    from mibench.sdk.trainer import Trainer, TrainingDiverged, predict_logits
    from mibench.sdk.training_config import OptimizerConfig, ScheduleConfig, TrainingConfig

__all__ = [
    # hooks
    "hookimpl",
    "hookspec",
    "hooks",
    # params
    "Params",
    "Plugin",
    "location",
    "tuning",
    "result_dump",
    # datasets
    "Dataset",
    "DatasetParams",
    "Pool",
    "DataShape",
    "Augment",
    # architectures
    "Architecture",
    # defenses
    "Defense",
    "LossDefense",
    "Objective",
    "ObjectiveSpec",
    "TrainedModel",
    "TrainingContext",
    "feature_dim",
    "carve_reference",
    # training
    "Trainer",
    "TrainingDiverged",
    "TrainingConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "predict_logits",
    # batches of pool samples
    "as_index",
    "unit_inputs",
    "model_inputs",
    "model_batches",
    "map_batches",
    "Normaliser",
    # attacks
    "Attack",
    "AttackContext",
    "AttackOutput",
    "ThresholdMode",
    "ModelView",
    "ShadowView",
    "ShadowNeeds",
    "NO_SHADOWS",
    "ThresholdAttack",
    "ThresholdParams",
    "ReferenceAttack",
    "ReferenceRules",
    "Table",
    "best_threshold",
    "per_class_thresholds",
    # shared helpers
    "softmax_entropy",
    "class_log_odds",
    "log_probs",
    "true_class_prob",
    "stratified_subsample",
    "seeded_rng",
    "progress_bar",
]


# Each public name and the submodule that defines it (a submodule's own name: the module).
_SOURCES: dict[str, str] = {
    "hooks": "hooks",
    "hookimpl": "hooks",
    "hookspec": "hooks",
    "Architecture": "architecture",
    "NO_SHADOWS": "attack",
    "Attack": "attack",
    "AttackContext": "attack",
    "AttackOutput": "attack",
    "ModelView": "attack",
    "ReferenceRules": "attack",
    "ShadowNeeds": "attack",
    "ShadowView": "attack",
    "ThresholdMode": "attack",
    "Normaliser": "batches",
    "as_index": "batches",
    "map_batches": "batches",
    "model_batches": "batches",
    "model_inputs": "batches",
    "unit_inputs": "batches",
    "Augment": "dataset",
    "DataShape": "dataset",
    "Dataset": "dataset",
    "DatasetParams": "dataset",
    "Pool": "dataset",
    "Defense": "defense",
    "LossDefense": "defense",
    "TrainedModel": "defense",
    "TrainingContext": "defense",
    "feature_dim": "defense",
    "Objective": "objective",
    "ObjectiveSpec": "objective",
    "class_log_odds": "outputs",
    "log_probs": "outputs",
    "softmax_entropy": "outputs",
    "true_class_prob": "outputs",
    "Params": "params",
    "Plugin": "params",
    "location": "params",
    "result_dump": "params",
    "tuning": "params",
    "progress_bar": "progress",
    "ReferenceAttack": "reference_attack",
    "Table": "reference_attack",
    "carve_reference": "sampling",
    "seeded_rng": "sampling",
    "stratified_subsample": "sampling",
    "ThresholdAttack": "threshold_attack",
    "ThresholdParams": "threshold_attack",
    "best_threshold": "thresholds",
    "per_class_thresholds": "thresholds",
    "Trainer": "trainer",
    "TrainingDiverged": "trainer",
    "predict_logits": "trainer",
    "OptimizerConfig": "training_config",
    "ScheduleConfig": "training_config",
    "TrainingConfig": "training_config",
}


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access, then keep the name here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{source}")
    value = module if source == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
