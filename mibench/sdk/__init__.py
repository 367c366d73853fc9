"""mibench's plugin SDK: the one import path for datasets, architectures, defenses and attacks.

Everything a plugin needs is importable from here, and only what ``__all__`` lists
(derived from the one table below) is public and stable: names are not removed or changed incompatibly
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
from typing import Any

# The one table of the SDK's names: each and the submodule that defines it (a submodule's own
# name: the module). ``__all__`` is derived from it; UNLISTED names stay importable for the
# engine and for old plugins, but a plugin author never needs them.
_SOURCES: dict[str, str] = {
    # hooks
    "hookimpl": "hooks",
    "hookspec": "hooks",
    "hooks": "hooks",
    # params
    "Params": "params",
    "Plugin": "params",
    "location": "params",
    "tuning": "params",
    "result_dump": "params",
    # datasets
    "Dataset": "dataset",
    "DatasetParams": "dataset",
    "Pool": "dataset",
    "DataShape": "dataset",
    "Augment": "dataset",
    # architectures
    "Architecture": "architecture",
    # defenses
    "Defense": "defense",
    "LossDefense": "defense",
    "Objective": "objective",
    "ObjectiveSpec": "objective",
    "TrainedModel": "defense",
    "TrainingContext": "defense",
    "feature_dim": "defense",
    "carve_reference": "sampling",
    # training
    "Trainer": "trainer",
    "TrainingDiverged": "trainer",
    "TrainingConfig": "training_config",
    "OptimizerConfig": "training_config",
    "ScheduleConfig": "training_config",
    "predict_logits": "trainer",
    # batches of pool samples
    "as_index": "batches",
    "unit_inputs": "batches",
    "model_inputs": "batches",
    "model_batches": "batches",
    "map_batches": "batches",
    "Normaliser": "batches",
    # canaries
    "Canary": "canary",
    "CanaryParams": "canary",
    "CanaryContext": "canary",
    "CanarySet": "canary",
    "random_other_labels": "canary",
    # attacks
    "Attack": "attack",
    "AttackContext": "attack",
    "AttackOutput": "attack",
    "ThresholdMode": "attack",
    "ModelView": "attack",
    "ReferenceView": "attack",
    "ReferenceNeeds": "attack",
    "NO_REFERENCES": "attack",
    "ReferenceRules": "attack",
    "calibration_samples": "calibration",
    "CalibrationSamples": "calibration",
    "ThresholdAttack": "threshold_attack",
    "ThresholdParams": "threshold_attack",
    "ReferenceAttack": "reference_attack",
    "Table": "reference_attack",
    "best_threshold": "thresholds",
    "per_class_thresholds": "thresholds",
    # shared helpers
    "softmax_entropy": "outputs",
    "class_log_odds": "outputs",
    "hinge_margin": "outputs",
    "log_probs": "outputs",
    "true_class_prob": "outputs",
    "stratified_subsample": "sampling",
    "seeded_rng": "sampling",
    "progress_bar": "progress",
    "PluginOutputError": "checks",
    # the 0.2 names of reference models, kept (with a DeprecationWarning) until 0.4
    "ShadowView": "attack",
    "ShadowNeeds": "attack",
    "NO_SHADOWS": "attack",
}

UNLISTED = frozenset({"hooks", "hookspec", "result_dump", "Normaliser", "model_inputs", "as_index", "feature_dim"})
RENAMED = {"ShadowView": "ReferenceView", "ShadowNeeds": "ReferenceNeeds", "NO_SHADOWS": "NO_REFERENCES"}

__all__ = [name for name in _SOURCES if name not in UNLISTED and name not in RENAMED]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access, then keep the name here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in RENAMED:
        import warnings

        warnings.warn(f"mibench.sdk.{name} is deprecated since mibench 0.3 and goes in 0.4; use "
                      f"mibench.sdk.{RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{source}"), name)
    module = importlib.import_module(f"{__name__}.{source}")
    value = module if source == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
