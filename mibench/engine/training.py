"""Training one run and storing its released models: the code path every model key covers.

Everything this module imports from the engine and the SDK (the trainer, batches,
objectives, splits, the store) is part of the model key's code digest
(:func:`mibench.registry.code.code_path_digest`), and nothing else of mibench is:
editing metrics or reports never retrains a model.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import torch

from mibench.engine.models import TrainingRun, build_model
from mibench.engine.pools import run_pool, run_splits
from mibench.engine.records import TrainRecord
from mibench.engine.stacking import StackMember, fit_stacked
from mibench.engine.store import Store
from mibench.sdk.defense import TrainedModel, TrainingContext
from mibench.sdk.trainer import Trainer, TrainingDiverged


def model_stored(store: Store, key: str) -> bool:
    """A finished model: its weights and its record, both intact (a damaged one is quarantined)."""
    return store.has("models", key, "pt") and store.has("models", key, "json")


def training_context(job: TrainingRun, device: torch.device) -> TrainingContext:
    """What the defense of ``job`` trains with: the pool, the split, a seeded trainer (torch seeded too)."""
    pool = run_pool(job)
    split = run_splits(job).split(job.role)
    torch.manual_seed(job.seed)
    return TrainingContext(
        pool=pool,
        train_indices=split.training,
        build_model=lambda: build_model(job.architecture, pool, device),
        trainer=Trainer(job.training, pool, device, job.seed, desc=job.label()),
        seed=job.seed,
        device=device,
        role=str(job.role),
        release_values=job.release_values,
    )


def run_train_job(job: TrainingRun, store: Store, device: torch.device) -> TrainRecord:
    """Train and save every model of ``job`` that the store lacks; returns the run's record."""
    keys = tuple(job.model_keys())
    if all(model_stored(store, k) for k in keys):
        return TrainRecord(keys)
    context = training_context(job, device)
    started = time.time()
    released = job.defense.create().train(context)
    return store_released(job, store, released, context.train_indices, time.time() - started)


def store_released(job: TrainingRun, store: Store, released: Any, train_split: np.ndarray, seconds: float,
                   stacked: int = 1) -> TrainRecord:
    """Check and save what ``job``'s defense released (a diverged run stores none of it); its record."""
    if isinstance(released, TrainedModel):
        released = {None: released}
    if not isinstance(released, Mapping):
        raise TypeError(f"defense {job.defense.name!r} returned {type(released).__name__}, not a TrainedModel")
    for trained in released.values():  # every released model first: a diverged run stores none of them
        _check_finite(trained.model)
    for value, trained in released.items():
        if not model_stored(store, job.model_key(value)):  # a checkpoint already released stays as it is
            _save_model(store, job, value, trained, train_split, seconds, stacked)
    return TrainRecord(tuple(job.model_keys()), round(seconds, 3), torch.get_num_threads(), trained=True)


def run_train_stack(jobs: list[TrainingRun], store: Store, device: torch.device) -> list[TrainRecord | Exception]:
    """Train ``jobs`` (one :func:`~mibench.engine.stacking.stack_key`) as one stack and store each model.

    Per job, its record or the exception that failed it: a diverged model fails only
    itself. A job whose models are stored already is not trained again.
    """
    outcomes: list[TrainRecord | Exception | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        if all(model_stored(store, k) for k in job.model_keys()):
            outcomes[i] = TrainRecord(tuple(job.model_keys()))
        else:
            todo.append(i)
    if not todo:
        return outcomes
    members = {}
    for i in todo:
        context = training_context(jobs[i], device)
        model, objective = jobs[i].defense.create().prepare(context)
        members[i] = StackMember(model, objective, context.trainer, np.asarray(context.train_indices))
    by_size: dict[int, list[int]] = {}
    for i in todo:  # members of one stack train on equally many samples (a target's split may differ)
        by_size.setdefault(len(members[i].indices), []).append(i)
    for group in by_size.values():
        started = time.time()
        lead = jobs[group[0]]
        if len(group) == 1:  # alone in its size: the shared loop, as its defense's train() would run it
            member = members[group[0]]
            diverged = [_fit_alone(member)]
        else:
            diverged = fit_stacked([members[i] for i in group], lead.training, run_pool(lead), device,
                                   desc=f"train {len(group)} stacked: {lead.label()}")
        seconds = (time.time() - started) / len(group)  # each model's share of the stack's time
        for i, failure in zip(group, diverged):
            try:
                if failure is not None:
                    raise failure
                released = TrainedModel(members[i].model, members[i].indices)
                outcomes[i] = store_released(jobs[i], store, released, members[i].indices, seconds, len(group))
            except Exception as exc:  # noqa: BLE001 - this model's failure, not the stack's
                outcomes[i] = exc
    return outcomes


def _fit_alone(member: StackMember) -> TrainingDiverged | None:
    try:
        member.trainer.fit(member.model, member.indices, member.objective)
    except TrainingDiverged as exc:
        return exc
    return None


def _check_finite(model: torch.nn.Module) -> None:
    """Raise :class:`TrainingDiverged` if a floating tensor of ``model``'s state_dict is not finite.

    Covers every defense, the shared loop's or its own: a model with non-finite
    weights is never stored as finished.
    """
    bad = sum(int((~torch.isfinite(t.detach())).sum()) for t in model.state_dict().values()
              if t.is_floating_point() or t.is_complex())
    if bad:
        raise TrainingDiverged(f"training diverged: {bad} non-finite weights in the released model")


def _save_model(store: Store, job: TrainingRun, value: Any, trained: TrainedModel, train_split: np.ndarray,
                seconds: float, stacked: int = 1) -> None:
    members = np.asarray(trained.members, dtype=np.int64)
    if not np.isin(members, train_split).all():
        raise AssertionError(f"defense {job.defense.name!r} reports members outside its training split")
    key = job.model_key(value)
    record = {
        "identity": job.identity(),
        "release_value": value,
        "info": dict(trained.info),
        "members": int(len(members)),
        "train_seconds": round(seconds, 3),
        "stacked": stacked,  # trained with stacked - 1 other models at once (training.stack)
        "threads": torch.get_num_threads(),  # model bytes depend on it (CPU reductions split by thread)
    }
    store.save_json("models", key, record)
    state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
    store.save_torch("models", key, {"state_dict": state, "members": torch.as_tensor(members)})
