"""How much compute a plan needs, from the models' FLOPs, before anything runs.

One function, :func:`job_cost`, estimates every job, and both ``mibench validate``
(:func:`plan_cost`) and the scheduler's priorities read it. Training one model costs
about 3 x (forward FLOPs per image) x training samples x epochs (forward plus a
backward of twice the cost), times the defense's ``training_cost`` (AdvReg's
inference steps, DP-SGD's per-sample gradients); the training samples are the
protocol's to say. A prediction is one forward pass per pool sample. An attack
adds its declared ``query_cost`` (model passes per sample and model) on the
target's and each reference model's evaluation samples. FLOPs come from
:mod:`mibench.config.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mibench.config.resolve import ResolvedGrid
from mibench.config.shapes import data_shape, forward_flops
from mibench.engine.jobs import AttackJob, Job, PredictJob, TrainJob
from mibench.engine.models import TrainingRun
from mibench.engine.plan import Plan

DEFAULT_TFLOPS = 50.0  # effective training throughput assumed for a modern datacenter GPU


@dataclass
class ModelCost:
    dataset: str
    architecture: str
    models: int
    gflops_per_image: float
    params_m: float
    train_pflops: float
    attack_pflops: float = 0.0


def _forward(run: TrainingRun) -> tuple[float, float, int] | None:
    """(forward FLOPs per image, parameters, pool size) of ``run``'s model, None when the dataset's size is unknown."""
    shape = data_shape(run.dataset)
    if shape is None:
        return None
    flops, params = forward_flops(run.architecture, shape.input_shape, shape.num_classes)
    return flops, params, shape.pool_size


def _run_of(job: Job) -> TrainingRun | None:
    if isinstance(job, TrainJob):
        return job.training_run
    if isinstance(job, PredictJob):
        return job.model.run
    if isinstance(job, AttackJob):
        return job.target.run
    return None


def job_cost(job: Job) -> float:
    """Estimated FLOPs of ``job`` (0 for an attack without a declared query cost; 1 when unknown)."""
    run = _run_of(job)
    try:
        forward = _forward(run) if run is not None else None
    except Exception:  # noqa: BLE001 - an estimate only; validation reports real problems
        forward = None
    if forward is None:
        return 1.0
    flops, _, pool_size = forward
    samples = run.protocol.training_samples(pool_size)
    if isinstance(job, TrainJob):
        return 3.0 * flops * samples * run.training.epochs * run.defense.info.cls.training_cost
    if isinstance(job, PredictJob):
        return flops * pool_size
    cost = job.attack.info.cls.queries(job.attack.params)
    return cost * flops * 2 * samples * (1 + len(job.shadows))  # members and non-members of each model


def plan_cost(resolved: ResolvedGrid, plan: Plan) -> tuple[list[ModelCost], list[str]]:
    """Compute per (dataset, architecture), and the datasets whose size is unknown."""
    rows: dict[tuple[str, str], ModelCost] = {}
    unknown: list[str] = []
    for job in plan.jobs.values():
        run = _run_of(job)
        if run is None:
            continue
        forward = _forward(run)
        if forward is None:
            if run.dataset.label not in unknown:
                unknown.append(run.dataset.label)
            continue
        flops, params, _ = forward
        key = (run.dataset.label, run.architecture.label)
        row = rows.setdefault(key, ModelCost(*key, 0, flops / 1e9, params / 1e6, 0.0))
        if isinstance(job, AttackJob):
            row.attack_pflops += job_cost(job) / 1e15
        else:
            row.models += len(run.model_keys()) if isinstance(job, TrainJob) else 0
            row.train_pflops += job_cost(job) / 1e15
    return list(rows.values()), unknown
