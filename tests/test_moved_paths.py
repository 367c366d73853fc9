"""The 0.1 import paths keep working until 0.4, each with a DeprecationWarning naming mibench.sdk."""

from __future__ import annotations

import importlib
import sys

import pytest

import mibench.sdk

MOVED = {
    "mibench.interfaces": ["LossDefense", "Objective", "Params", "TrainingJob", "ThresholdAttack"],
    "mibench.hookspecs": ["hookimpl", "hookspec"],
    "mibench.threshold": ["ThresholdAttack", "ThresholdParams"],
    "mibench.reference": ["ReferenceAttack", "Table"],
    "mibench.training": ["Trainer", "TrainingDiverged", "predict_logits"],
    "mibench.data": ["Normaliser", "as_index", "map_batches", "model_batches", "model_inputs", "unit_inputs"],
    "mibench.outputs": ["class_log_odds", "log_probs", "softmax_entropy", "true_class_prob"],
    "mibench.progress": ["progress_bar"],
}


@pytest.mark.parametrize("path", MOVED)
def test_a_01_import_path_works_and_warns(path, monkeypatch):
    monkeypatch.delitem(sys.modules, path, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{path} is deprecated .* 0\.4; import from mibench\.sdk instead"):
        module = importlib.import_module(path)
    for name in MOVED[path]:
        expected = mibench.sdk.TrainingContext if name == "TrainingJob" else getattr(mibench.sdk, name)
        assert getattr(module, name) is expected, name
