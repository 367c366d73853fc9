"""How much compute a plan needs, from the models' FLOPs, before anything runs.

Training one model costs about 3 x (forward FLOPs per image) x images x epochs
(forward plus a backward of twice the cost), times the defense's ``training_cost``
(AdvReg's inference steps, DP-SGD's per-sample gradients); predictions add one
forward pass per evaluation sample. Attacks add their declared ``query_cost`` (model
passes per sample and model) on the target's and each shadow's evaluation samples.
FLOPs come from :mod:`mibench.config.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mibench.config.resolve import ResolvedGrid
from mibench.config.shapes import data_shape, forward_flops
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


def _members(run, pool_size: int) -> int:
    """Training samples of a model: a quarter of the pool (REFERENCE §1), or half of the pool protocol's set D."""
    if run.layout is None:
        return pool_size // 4
    return int(pool_size * run.layout.dataset_fraction) // 2


def plan_cost(resolved: ResolvedGrid, plan: Plan) -> tuple[list[ModelCost], list[str]]:
    """Compute per (dataset, architecture), and the datasets whose size is unknown."""
    rows: dict[tuple[str, str], ModelCost] = {}
    unknown: list[str] = []
    for job in plan.train_jobs.values():
        shape = data_shape(job.dataset)
        if shape is None:
            if job.dataset.label not in unknown:
                unknown.append(job.dataset.label)
            continue
        flops, params = forward_flops(job.architecture, shape.input_shape, shape.num_classes)
        members = _members(job, shape.pool_size)
        models = len(job.model_keys())
        train = 3 * flops * members * job.training.epochs * job.defense.info.cls.training_cost
        predict = flops * 2 * members * models
        key = (job.dataset.label, job.architecture.label)
        row = rows.setdefault(key, ModelCost(*key, 0, flops / 1e9, params / 1e6, 0.0))
        row.models += models
        row.train_pflops += (train + predict) / 1e15
    for attack in plan.attack_jobs:
        cost = attack.attack.info.cls.query_cost
        run = attack.target.run
        shape = data_shape(run.dataset)
        if not cost or shape is None:
            continue
        flops, params = forward_flops(run.architecture, shape.input_shape, shape.num_classes)
        samples = 2 * _members(run, shape.pool_size) * (1 + len(attack.shadows))  # members and non-members
        key = (run.dataset.label, run.architecture.label)
        row = rows.setdefault(key, ModelCost(*key, 0, flops / 1e9, params / 1e6, 0.0))
        row.attack_pflops += cost * flops * samples / 1e15
    return list(rows.values()), unknown
