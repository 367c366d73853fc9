"""The plan, built without running anything: which jobs a grid needs, their keys and their dependencies."""

from __future__ import annotations

from mibench.config.resolve import load_grid
from mibench.engine.jobs import AttackJob, PredictJob, SplitsJob, TrainJob
from mibench.engine.plan import build_plan, predict_key, train_key
from mibench.engine.store import stable_hash
from tests.grids import digits_grid


def plan_of(write_grid, registry, **grid):
    return build_plan(load_grid(write_grid(digits_grid(**grid)), registry))


def test_a_paper_cell_is_a_target_its_shadows_and_one_attack_job_per_attack(write_grid, registry):
    plan = plan_of(write_grid, registry, attacks="[loss, lira]", shadow=3)
    (cell,) = plan.cells
    assert [str(t.role) for t in cell.targets] == ["target"]
    assert [str(s.role) for s in cell.shadows] == ["shadow-0", "shadow-1", "shadow-2"]
    assert plan.model_count() == (1, 3)
    kinds = sorted(type(j).__name__ for j in plan.jobs.values())
    assert kinds == ["AttackJob"] * 2 + ["PredictJob"] * 4 + ["SplitsJob"] + ["TrainJob"] * 4
    for attack in cell.attacks:  # an attack waits for the predictions of its target and references
        assert set(attack.deps) == {predict_key(r) for r in (*attack.shadows, attack.target)}


def test_every_job_is_planned_once_and_after_its_dependencies(write_grid, registry):
    plan = plan_of(write_grid, registry, defenses="[ce, label-smoothing]", seeds="[0, 1]")
    order = [j.key for j in plan.order()]
    assert sorted(order) == sorted(plan.jobs) and len(set(order)) == len(order)
    position = {k: i for i, k in enumerate(order)}
    assert all(position[d] < position[k] for k, j in plan.jobs.items() for d in j.deps)
    assert len(plan.cells) == 4 and plan.model_count() == (4, 8)


def test_a_shared_shadow_pool_and_a_shared_training_run_are_one_job_each(write_grid, registry):
    shared = plan_of(write_grid, registry, defenses="[ce, label-smoothing]", shadow_training="ce")
    assert shared.model_count() == (2, 2)  # one ce shadow pool serves both defenses
    a, b = shared.cells
    assert [s.key for s in a.shadows] == [s.key for s in b.shadows]
    epochs = plan_of(write_grid, registry, defenses="[{name: early-stopping, sweep: {epoch: [2, 4]}}]",
                     attacks="[loss]", shadow=1)
    runs = [j.training_run for j in epochs.jobs.values() if isinstance(j, TrainJob)]
    assert sorted(r.release_values for r in runs if str(r.role) == "target") == [(2, 4)]  # trained once
    assert len(epochs.cells) == 2 and epochs.cells[0].target.key != epochs.cells[1].target.key


def test_each_job_key_is_the_hash_of_its_declared_inputs(write_grid, registry):
    plan = plan_of(write_grid, registry, attacks="[loss, lira]")
    for key, job in plan.jobs.items():
        if isinstance(job, PredictJob):
            assert key == "predict:" + job.model.key  # a prediction is keyed by its model
        elif isinstance(job, TrainJob):
            assert key == train_key(job.training_run.models()[0]) == "train:" + stable_hash(job.inputs())
        else:
            assert isinstance(job, (SplitsJob, AttackJob))
            assert key == f"{job.kind}:" + stable_hash(job.inputs())


def test_the_pool_protocol_plans_m_models_and_m_attack_jobs_per_attack(write_grid, registry):
    plan = plan_of(write_grid, registry, attacks="[loss, lira]", extra="protocol: pool\npool: {models: 6}\n")
    (cell,) = plan.cells
    assert plan.model_count() == (6, 0) and [len(g) for g in cell.attack_groups()] == [6, 6]
    for job in cell.attack_groups()[1]:
        assert job.target.key not in {r.key for r in job.shadows} and len(job.shadows) == 5
