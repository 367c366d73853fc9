"""Plugins written against the 0.2 SDK keep running until 0.4, with a DeprecationWarning naming the new API.

tests/frozen_sdk_0_2 holds the three example packages as they were written for 0.2
(``shadow_needs``, ``ctx.shadows``, ``train(job)``); they run here unchanged, through
the adapters, and give the numbers today's examples give.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import torch

import mibench.sdk
from mibench.registry.loading import PluginManager
from mibench.sdk import ReferenceAttack, ReferenceNeeds, ThresholdAttack
from tests.fakes import FakeAccess, context, label_pool
from tests.grids import digits_grid, run_grid

FROZEN = ["tests.frozen_sdk_0_2.mibench_flooding", "tests.frozen_sdk_0_2.mibench_label_only",
          "tests.frozen_sdk_0_2.mibench_refset_distill"]
GRID = digits_grid(architectures="[{name: mlp, params: {hidden: [16]}}]", epochs=3,
                   defenses="[flooding, {name: refset-distill, params: {reference_fraction: 0.2}}]",
                   attacks="[loss, label-only-aug]")
COMPARED = ["defense", "attack", "status", "train_acc", "test_acc", "auc", "balanced_acc"]


def frozen_registry():
    manager = PluginManager()
    manager.load_builtins()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in FROZEN:
            manager.register(importlib.reload(importlib.import_module(name)), name=name)
    return manager.build_registry(), [str(w.message) for w in caught]


def test_the_frozen_0_2_examples_run_unchanged_and_give_todays_numbers(write_grid, registry, tmp_path):
    frozen, at_import = frozen_registry()
    assert set(at_import) == {"mibench.sdk.ShadowNeeds is deprecated since mibench 0.3 and goes in 0.4; "
                              "use mibench.sdk.ReferenceNeeds"}
    assert frozen.get("attack", "label-only-aug").module == "tests.frozen_sdk_0_2.mibench_label_only"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = run_grid(write_grid, frozen, tmp_path / "old", GRID)
    assert old.summary.ok, old.summary.failures
    said = {str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)}
    assert "LabelOnlyAttack.shadow_needs is deprecated since mibench 0.3 and goes in 0.4; use a needs(cls, params) " \
           "classmethod" in said
    assert "AttackContext.shadows is deprecated since mibench 0.3 and goes in 0.4; use AttackContext.references" in said

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # today's examples use no deprecated name
        new = run_grid(write_grid, registry, tmp_path / "new", GRID)
    assert new.summary.ok, new.summary.failures
    a, b = old.results[COMPARED], new.results[COMPARED]
    assert a[["defense", "attack", "status"]].equals(b[["defense", "attack", "status"]])
    np.testing.assert_allclose(a[COMPARED[3:]].to_numpy(float), b[COMPARED[3:]].to_numpy(float), atol=1e-9)


class OldLoss(ThresholdAttack):
    """A 0.2 threshold attack: ``score`` and ``shadow_needs``."""

    name = "old-loss"
    shadow_needs = ReferenceNeeds(count=2)

    def score(self, logits, labels):
        return -torch.nn.functional.cross_entropy(logits, labels, reduction="none")


class NewLoss(ThresholdAttack):
    name = "new-loss"

    @classmethod
    def needs(cls, params):
        return ReferenceNeeds(count=2)

    def signal(self, logits, labels):
        return -torch.nn.functional.cross_entropy(logits, labels, reduction="none")


class OldGap(ReferenceAttack):
    """A 0.2 reference attack: ``statistic`` and ``score(x, z)``."""

    name = "old-gap"

    def statistic(self, logits, labels):
        return logits[torch.arange(len(labels)), labels].numpy()

    def score(self, x, z):
        return np.nan_to_num(x.target - x.out_mean())


class NewGap(ReferenceAttack):
    name = "new-gap"

    def signal(self, logits, labels):
        return logits[torch.arange(len(labels)), labels].numpy()

    def compare(self, x, z, ctx):
        return np.nan_to_num(x.target - x.out_mean())


def small_context():
    rng = np.random.default_rng(0)
    pool = label_pool(rng.integers(0, 3, 40), 3)
    logits = torch.as_tensor(rng.normal(size=(40, 3)), dtype=torch.float32)
    models = []
    for m in range(4):
        members = np.sort(rng.choice(40, 20, replace=False))
        models.append(FakeAccess(pool, members, np.setdiff1d(np.arange(40), members),
                                 lambda idx, m=m: logits[idx] + m * 0.1))
    return context(models[0], models[1:])


@pytest.mark.parametrize("old, new, warned", [
    (OldLoss, NewLoss, ["OldLoss.score is deprecated since mibench 0.3 and goes in 0.4; use signal(logits, labels)"]),
    (OldGap, NewGap, ["OldGap.statistic is deprecated since mibench 0.3 and goes in 0.4; use signal(logits, labels)",
                      "OldGap.score(x, z) is deprecated since mibench 0.3 and goes in 0.4; use compare(x, z, ctx)"]),
])
def test_0_2_attack_methods_are_adapters_onto_the_new_pipeline(old, new, warned):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = old(old.Params()).run(small_context())
    messages = sorted({str(w.message) for w in caught})
    assert messages == sorted(warned)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        want = new(new.Params()).run(small_context())
    np.testing.assert_array_equal(got.scores, want.scores)
    assert got.thresholds == pytest.approx(want.thresholds) if want.thresholds is not None else got.thresholds is None


def test_shadow_needs_is_read_with_a_warning_and_needs_is_the_one_way():
    with pytest.warns(DeprecationWarning, match=r"OldLoss.shadow_needs is deprecated .* use a needs\(cls, params\)"):
        assert OldLoss.needs(None) == ReferenceNeeds(count=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert NewLoss.needs(None) == ReferenceNeeds(count=2)


def test_old_sdk_names_still_import_with_a_warning():
    for old, new in [("ShadowNeeds", "ReferenceNeeds"), ("ShadowView", "ReferenceView"), ("NO_SHADOWS", "NO_REFERENCES")]:
        with pytest.warns(DeprecationWarning, match=f"mibench.sdk.{old} is deprecated .* use mibench.sdk.{new}"):
            assert getattr(mibench.sdk, old) is getattr(mibench.sdk, new)
        assert old not in mibench.sdk.__all__ and new in mibench.sdk.__all__
    ctx = small_context()
    with pytest.warns(DeprecationWarning, match="AttackContext.shadows is deprecated"):
        assert ctx.shadows is ctx.references


def test_all_comes_from_one_table_and_leaves_out_what_plugin_authors_never_need():
    table = mibench.sdk._SOURCES
    assert mibench.sdk.__all__ == [n for n in table if n not in mibench.sdk.UNLISTED and n not in mibench.sdk.RENAMED]
    for name in ("hooks", "hookspec", "result_dump", "Normaliser", "model_inputs", "as_index", "feature_dim"):
        assert name not in mibench.sdk.__all__
        assert getattr(mibench.sdk, name) is not None  # still importable
    namespace: dict = {}
    exec("from mibench.sdk import *", namespace)
    assert {"calibration_samples", "ReferenceRules", "ReferenceNeeds", "Table"} <= set(namespace)


def test_every_built_in_attack_declares_its_needs_without_deprecated_paths(registry):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in registry.names("attack"):
            info = registry.get("attack", name)
            if info.module.startswith("mibench_plugins."):
                assert isinstance(info.cls.needs(info.cls.Params()), ReferenceNeeds), name

