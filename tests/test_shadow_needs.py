"""Attacks declare what they need of shadow models (ReferenceNeeds) and what they cost (queries);
the planner and ``mibench validate`` read only those declarations."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.estimate import job_cost
from mibench.engine.jobs import AttackJob
from mibench.engine.plan import build_plan
from mibench.registry.loading import default_manager, set_registry
from mibench.sdk import NO_REFERENCES, ReferenceNeeds, hookimpl
from mibench_plugins.attacks.confidence import LossAttack


class PlainShadowLoss(LossAttack):
    """The loss attack, calibrated on plainly trained shadows whatever the grid says."""

    name = "loss-plain-shadows"
    @classmethod
    def needs(cls, params):
        return ReferenceNeeds(training="plain")


class LikeTargetLoss(LossAttack):
    """The loss attack, calibrated on shadows trained like the target whatever the grid says."""

    name = "loss-like-target"
    @classmethod
    def needs(cls, params):
        return ReferenceNeeds(training="like-target")


class OnlineLoss(LossAttack):
    """Needs shadows trained on the target's evaluation samples."""

    name = "loss-online"
    @classmethod
    def needs(cls, params):
        return ReferenceNeeds(mode="online")


class Blind(LossAttack):
    """Uses no shadows at all."""

    name = "blind"
    @classmethod
    def needs(cls, params):
        return NO_REFERENCES


class Costly(LossAttack):
    """Declares 8 model passes per sample."""

    name = "costly"
    query_cost = 8.0


class Attacks:
    @hookimpl
    def register_attacks(self, register):
        for cls in (PlainShadowLoss, LikeTargetLoss, OnlineLoss, Blind, Costly):
            register(cls)


@pytest.fixture(scope="module")
def registry():
    manager = default_manager()
    manager.register(Attacks(), name="tests.shadow_needs")
    return manager.build_registry()


GRID = """
name: needs
datasets: [digits]
architectures: [mlp]
defenses: [{name: label-smoothing, params: {epsilon: 0.2}}]
attacks: ATTACKS
shadow: {count: 2, training: SHADOWS}
"""


def plan_for(write_grid, registry, attacks: str, shadows: str = "adaptive"):
    path = write_grid(GRID.replace("ATTACKS", attacks).replace("SHADOWS", shadows))
    return build_plan(load_grid(path, registry))


def test_each_attack_gets_the_shadows_it_declares(write_grid, registry):
    plan = plan_for(write_grid, registry, "[loss, loss-plain-shadows, blind]")
    (cell,) = plan.cells
    by_attack = {a.attack.name: a for a in cell.attacks}
    assert {s.run.defense.label for s in by_attack["loss"].shadows} == {"label-smoothing(epsilon=0.2)"}
    assert {s.run.defense.label for s in by_attack["loss-plain-shadows"].shadows} == {"ce"}
    assert by_attack["blind"].shadows == ()
    assert plan.model_count() == (1, 4)  # one target, two adaptive and two plain shadows


def test_like_target_overrides_a_shared_shadow_pool(write_grid, registry):
    plan = plan_for(write_grid, registry, "[loss, loss-like-target]", shadows="ce")
    by_attack = {a.attack.name: a for a in plan.cells[0].attacks}
    assert {s.run.defense.name for s in by_attack["loss"].shadows} == {"ce"}
    assert {s.run.defense.name for s in by_attack["loss-like-target"].shadows} == {"label-smoothing"}


def test_online_shadows_are_refused_by_the_paper_protocol(write_grid, registry):
    path = write_grid(GRID.replace("ATTACKS", "[loss, loss-online]").replace("SHADOWS", "adaptive"))
    with pytest.raises(ConfigError) as err:
        load_grid(path, registry)
    assert str(err.value) == (f"{path}:5: attacks[1]: attack 'loss-online' needs online reference models (trained "
                              "on half of the target's evaluation samples); 'protocol: paper' trains offline shadows "
                              "only: use 'protocol: pool'")


def test_validate_estimates_an_attacks_declared_cost(write_grid, registry):
    set_registry(registry)
    try:
        cheap = CliRunner().invoke(main, ["validate", str(write_grid(GRID.replace("ATTACKS", "[loss]")
                                                                     .replace("SHADOWS", "adaptive")))])
        costly = CliRunner().invoke(main, ["validate", str(write_grid(GRID.replace("ATTACKS", "[costly]")
                                                                      .replace("SHADOWS", "adaptive"), "c.yaml"))])
    finally:
        set_registry(None)
    assert cheap.exit_code == 0 and costly.exit_code == 0, cheap.output + costly.output
    assert "PFLOP attacks" not in cheap.output
    assert "PFLOP attacks" in costly.output


def test_the_estimate_reads_each_attacks_queries_for_its_params(write_grid, registry):
    attacks = ("[{name: lira, params: {augmentations: mirror}}, {name: lira, params: {augmentations: mirror-shifts}},"
               " {name: label-only, params: {family: translation, distance: 2}}, costly]")
    plan = plan_for(write_grid, registry, attacks)
    cost = {(job.attack.name, job.attack.info.cls.queries(job.attack.params)): job_cost(job)
            for job in plan.jobs.values() if isinstance(job, AttackJob)}
    assert set(cost) == {("lira", 1.0), ("lira", 17.0), ("label-only", 9.0), ("costly", 8.0)}
    one = cost["lira", 1.0]
    assert [cost[key] / one for key in [("lira", 17.0), ("label-only", 9.0), ("costly", 8.0)]] == [17.0, 9.0, 8.0]
