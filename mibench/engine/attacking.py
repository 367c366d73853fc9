"""Running one attack against one target and storing its scores: the code path every attack output's key covers.

The attack sees the target through a :class:`~mibench.engine.access.TargetView` (no
member list) and its evaluation samples in pool order; membership is attached here, by
the engine. Metrics are not computed here: the layer that makes result rows computes
them from the stored scores, so editing a metric re-attacks nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from mibench.config.seeds import derived_seed
from mibench.engine.access import ModelAccess, TargetView, open_model
from mibench.engine.models import ModelRef
from mibench.engine.pools import run_splits
from mibench.engine.records import AttackRecord
from mibench.engine.store import Store
from mibench.sdk.attack import AttackContext, AttackOutput

Opener = Callable[[Store, ModelRef, torch.device], ModelAccess]


def run_attack_job(job: Any, store: Store, device: torch.device, opener: Opener = open_model) -> AttackRecord:
    """Run ``job`` (an :class:`~mibench.engine.jobs.AttackJob`) and store its scores, membership, labels
    and thresholds under its ``output_key`` (kept if already stored)."""
    key = job.output_key
    if store.has("attacks", key, "npz") and store.has("attacks", key, "json"):
        out = load_attack_output(store, key)
        _check_thresholds(job.attack.name, out["thresholds"])  # also an output stored before the check existed
        return attack_record(key, out["membership"], out["threshold_mode"], out["info"])
    access = opener(store, job.target, device)
    target = TargetView(access)
    needs = job.attack.info.cls.needs(job.attack.params)
    shadows = [opener(store, ref, device) for ref in job.shadows] if needs.uses_references else []
    eval_indices, membership = access.evaluation()
    view = run_splits(job.target.run).attack_view()
    if needs.population == "target-nonmembers":  # the auditor's game of RMIA's authors (ReferenceNeeds)
        view["population"] = access.clean_nonmembers()
    ctx = AttackContext(pool=access.pool, target=target, references=shadows, device=device,
                        seed=derived_seed(job.seed, "attack", job.attack.name), eval_indices=eval_indices, **view)
    torch.manual_seed(ctx.seed)
    output = job.attack.create().run(ctx)
    if not isinstance(output, AttackOutput):
        raise TypeError(f"attack {job.attack.name!r} returned {type(output).__name__}, not an AttackOutput")
    scores = np.asarray(output.scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(eval_indices):
        raise ValueError(f"attack {job.attack.name!r} returned {len(scores)} scores for {len(eval_indices)} samples")
    if output.thresholds is not None:
        _check_thresholds(job.attack.name, output.thresholds)
    thresholds = np.asarray(np.nan if output.thresholds is None else output.thresholds, dtype=np.float64)
    info = {**output.info, "target_queries": target.queries} if target.queries else dict(output.info)
    store.save_json("attacks", key, {"threshold_mode": output.threshold_mode, "info": info,
                                     "has_thresholds": output.thresholds is not None})
    store.save_arrays(
        "attacks",
        key,
        scores=scores,
        membership=membership,
        labels=access.labels(eval_indices).numpy(),
        indices=eval_indices,
        thresholds=thresholds,
    )
    return attack_record(key, membership, output.threshold_mode, info)


def attack_record(key: str, membership: np.ndarray, threshold_mode: str, info: dict[str, Any]) -> AttackRecord:
    membership = np.asarray(membership, dtype=bool)
    return AttackRecord(key, threshold_mode, int(membership.sum()), int((~membership).sum()), dict(info))


def _check_thresholds(attack: str, thresholds: np.ndarray | float | None) -> None:
    """Refuse NaN thresholds (a NaN threshold calls nobody a member: balanced accuracy 0.5, silently).

    Infinite thresholds are legitimate ("nobody" or "everybody" is a member); None means no thresholds.
    """
    if thresholds is None:
        return
    thr = np.asarray(thresholds, dtype=np.float64)
    nan = int(np.isnan(thr).sum())
    if nan:
        what = "its global threshold is" if thr.ndim == 0 else f"{nan} of its {thr.size} per-class thresholds are"
        raise ValueError(f"attack {attack!r} returned NaN thresholds: {what} NaN "
                         "(were its shadow models' outputs finite?)")


def load_attack_output(store: Store, key: str) -> dict[str, Any]:
    arrays = store.load_arrays("attacks", key)
    meta = store.load_json("attacks", key)
    thresholds = arrays["thresholds"]
    return {
        **arrays,
        "thresholds": (thresholds if thresholds.ndim else float(thresholds)) if meta["has_thresholds"] else None,
        "threshold_mode": meta["threshold_mode"],
        "info": meta["info"],
    }
