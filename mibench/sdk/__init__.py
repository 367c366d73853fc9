"""mibench's plugin SDK: the one import path for datasets, architectures, defenses and attacks.

Everything a plugin needs is importable from here, and only what is listed in
``__all__`` is public and stable: names are not removed or changed incompatibly
without a release that keeps a shim. The SDK imports nothing from the rest of
mibench, so a plugin cannot come to depend on the engine by accident.
docs/plugins.md documents every name below.
"""

from mibench.sdk import hooks
from mibench.sdk.architecture import Architecture
from mibench.sdk.attack import (
    NO_SHADOWS,
    Attack,
    AttackContext,
    AttackOutput,
    ModelView,
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
