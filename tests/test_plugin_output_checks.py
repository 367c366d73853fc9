"""What plugin code returns is checked where it returns it: a wrong length or kind names the plugin, the method
and what was expected, instead of failing far away in a broadcast or a boolean index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mibench.sdk import PluginOutputError, ReferenceAttack, ThresholdAttack
from tests.fakes import FakeAccess, context, label_pool

N = 40
POOL = label_pool(np.arange(N) % 2, 2)


def model(members, seed):
    rng = np.random.default_rng(seed)
    nonmembers = np.setdiff1d(np.arange(N), members)
    return FakeAccess(POOL, np.asarray(members), nonmembers,
                      lambda idx: torch.as_tensor(rng.normal(size=(len(idx), 2))))


def ctx():
    return context(model(np.arange(0, 20), 0), [model(np.arange(10, 30), 1), model(np.arange(20, 40), 2)])


class ShortCompare(ReferenceAttack):
    name = "short-compare"

    def signal(self, logits, labels):
        return logits[:, 0].numpy()

    def compare(self, x, z, ctx):
        return x.target[:-1]  # one score short


class TextSignal(ThresholdAttack):
    name = "text-signal"

    def signal(self, logits, labels):
        return np.array(["high"] * len(logits))


class ShortSignal(ThresholdAttack):
    name = "short-signal"

    def signal(self, logits, labels):
        return logits[1:, 0]


def test_a_reference_attack_that_returns_one_score_short_is_named():
    with pytest.raises(PluginOutputError) as err:
        ShortCompare().run(ctx())
    assert str(err.value) == ("attack 'short-compare' (ShortCompare): compare returned 39 values for 40 samples; it "
                              "must return one per sample, in the order of the samples it was given")


def test_a_threshold_attack_of_the_wrong_length_or_kind_is_named():
    with pytest.raises(PluginOutputError, match=r"^attack 'short-signal' \(ShortSignal\): model_signal returned 39 "
                                                r"values for 40 samples; it must return one per sample"):
        ShortSignal().run(ctx())
    with pytest.raises(PluginOutputError, match=r"^attack 'text-signal' \(TextSignal\): model_signal returned values "
                                                r"of type <U4; it must return numbers, one per sample$"):
        TextSignal().run(ctx())


def test_a_plugin_module_without_hookimpl_gets_a_warning_naming_it():
    import types

    from mibench.registry.loading import PluginManager

    module = types.ModuleType("acme_plugins")
    module.register_defenses = lambda register: None  # no @hookimpl: pluggy would skip it silently
    manager = PluginManager()
    manager.register(module, name="acme", source="plugin 'acme' (acme_plugins:x, from acme)")
    manager.register(types.ModuleType("nothing"), name="nothing")
    with pytest.warns(UserWarning) as caught:  # said when the registry is built, once every plugin loaded
        manager.build_registry()
    assert [str(w.message) for w in caught] == [
        "plugin 'acme' (acme_plugins:x, from acme) registers nothing: register_defenses lacks @hookimpl "
        "(from mibench.sdk import hookimpl)",
        "plugin nothing registers nothing: it has none of mibench's hooks (register_datasets, register_architectures, "
        "register_defenses, register_attacks, register_canaries)"]


def test_a_plugin_whose_hooks_register_no_class_gets_a_warning():
    from mibench.registry.loading import PluginManager
    from mibench.sdk import hookimpl

    class Idle:
        @hookimpl
        def register_defenses(self, register):
            return None  # forgot register(MyDefense)

    manager = PluginManager()
    manager.register(Idle(), name="idle", source="plugin 'idle' (idle_plugin, from idle)")
    with pytest.warns(UserWarning) as caught:
        manager.build_registry()
    assert [str(w.message) for w in caught] == [
        "plugin 'idle' (idle_plugin, from idle) registers nothing: its hooks ran but called register() with no class"]
