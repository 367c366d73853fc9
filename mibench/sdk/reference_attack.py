"""Base class for attacks that compare the target with reference models, sample by sample.

The reference models are the shadow models. A subclass defines :meth:`ReferenceAttack.statistic`
(logits, labels -> one number per sample, e.g. LiRA's scaled logit) and
:meth:`ReferenceAttack.score`, which turns that statistic under the target and under
each reference model (a :class:`Table`, which says which reference model trained on
which sample) into one membership score per sample. The base builds the tables from
cached logits, scores the target's evaluation samples (against population samples
``z`` drawn from ``ctx.population`` when the attack asks for them) and calibrates a
decision threshold.

Calibration is leave-one-out on the shadows: each shadow in turn plays the target, on
its own members and non-members, with the other shadows as its references (and only
those that did not train on a sample count as OUT for it). A sample with too few OUT
references gets a NaN score there and is left out. One global threshold maximising
balanced accuracy over the pooled scores is kept; with a single shadow (nobody left
to be a reference) there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from mibench.sdk.attack import Attack, AttackContext, AttackOutput, ModelView, ShadowView
from mibench.sdk.thresholds import best_threshold

@dataclass(frozen=True)
class Table:
    """A per-sample statistic of n samples under a target and under k reference models.

    ``target`` has shape (n,), ``refs`` (k, n); ``out[j, i]`` is True when reference
    model j did not train on sample i.
    """

    target: np.ndarray
    refs: np.ndarray
    out: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def out_mean(self) -> np.ndarray:
        """Mean of the statistic over each sample's OUT references (NaN where there are none)."""
        count = self.out.sum(0)
        total = np.where(self.out, self.refs, 0.0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _is_out(model: ShadowView, indices: np.ndarray) -> np.ndarray:
    """True where ``model`` did not train on the sample: neither a member nor carved out of its split."""
    return ~np.isin(indices, model.members) & ~np.isin(indices, model.excluded)


class ReferenceAttack(Attack):
    """Scores each sample by comparing the target's output with the reference models' outputs."""

    def statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """One number per row of ``logits`` (float64), the quantity the attack compares."""
        raise NotImplementedError

    def population_size(self) -> int | None:
        """How many population samples :meth:`score` needs: 0 for none, None for all."""
        return 0

    def score(self, x: Table, z: Table) -> np.ndarray:
        """One score per sample of ``x`` (higher = member), NaN where it cannot be scored.

        ``z`` holds population samples (none unless :meth:`population_size` asks):
        samples the target did not train on, each with at least one OUT reference.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------------ the run

    def _statistic(self, model: ModelView, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.statistic(model.logits(indices).double(), model.labels(indices)), dtype=np.float64)

    def run(self, ctx: AttackContext) -> AttackOutput:
        shadows = ctx.shadows
        least = max(1, self.shadow_needs.count)
        if len(shadows) < least:
            raise ValueError(f"attack {self.name!r} needs at least {least} shadow models, got {len(shadows)}")
        evals = ctx.eval_indices
        x = Table(
            self._statistic(ctx.target, evals),
            np.stack([self._statistic(s, evals) for s in shadows]),
            np.stack([_is_out(s, evals) for s in shadows]),
        )
        # Every shadow on the whole population: the references of the population
        # samples, and the shadows' own samples for the leave-one-out calibration.
        population = np.asarray(ctx.population, dtype=np.int64)
        pop_stats = np.stack([self._statistic(s, population) for s in shadows])
        pop_in = np.stack([np.isin(population, s.members) for s in shadows])
        pop_out = np.stack([_is_out(s, population) for s in shadows])
        z_pos = self._draw_population(ctx.seed, pop_out)
        z_target = self._statistic(ctx.target, population[z_pos]) if len(z_pos) else np.zeros(0)
        z = Table(z_target, pop_stats[:, z_pos], pop_out[:, z_pos])

        scores = self.score(x, z)
        if not np.isfinite(scores).all():
            raise ValueError(f"attack {self.name!r} could not score {int((~np.isfinite(scores)).sum())} target samples")
        threshold, n_cal = self._calibrate(pop_stats, pop_in, pop_out, z_pos)
        info = {"calibration_samples": n_cal, "population_samples": len(z_pos)}
        if threshold is None:
            return AttackOutput(scores, info=info)
        return AttackOutput(scores, threshold, "global", info)

    def _draw_population(self, seed: int, out: np.ndarray) -> np.ndarray:
        """Positions of population samples with at least one OUT reference (a seeded draw, sorted)."""
        size = self.population_size()
        eligible = np.flatnonzero(out.any(0))
        if size == 0:
            return np.zeros(0, dtype=np.int64)
        if len(eligible) == 0:
            raise ValueError(f"attack {self.name!r} needs population samples, and none has an OUT shadow model")
        if size is None or size >= len(eligible):
            return eligible
        return np.sort(np.random.default_rng(seed).choice(eligible, size, replace=False))

    def _calibrate(
        self, stats: np.ndarray, is_in: np.ndarray, is_out: np.ndarray, z_pos: np.ndarray
    ) -> tuple[float | None, int]:
        """Leave-one-out over the shadows: (global threshold or None, samples it was fitted on).

        A sample a shadow neither trained on nor held out (a defense's carve-out) is
        not one of its calibration samples.
        """
        k = len(stats)
        scores, membership = [], []
        for j in range(k):
            others = np.arange(k) != j
            refs, out = stats[others], is_out[others]
            if not len(refs):
                continue
            zj = z_pos[is_out[j, z_pos] & out[:, z_pos].any(0)]
            if self.population_size() != 0 and len(zj) == 0:
                continue
            s = self.score(Table(stats[j], refs, out), Table(stats[j, zj], refs[:, zj], out[:, zj]))
            keep = np.isfinite(s) & (is_in[j] | is_out[j])
            scores.append(s[keep])
            membership.append(is_in[j][keep])
        if not scores:
            return None, 0
        s, m = np.concatenate(scores), np.concatenate(membership)
        if m.all() or not m.any():
            return None, len(s)
        return best_threshold(s, m), len(s)
