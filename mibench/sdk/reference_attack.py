"""Base class for attacks that compare the target with reference models, sample by sample.

A subclass defines :meth:`ReferenceAttack.signal` (logits, labels -> one number per
sample, e.g. LiRA's scaled logit) and its decision rule :meth:`ReferenceAttack.compare`,
which turns that signal under the target and under each reference model (a
:class:`Table`, which says which reference model trained on which sample) into one
membership score per sample, with the attack context in hand. The base builds the
tables from cached logits, scores the target's evaluation samples (against
population samples ``z`` drawn from ``ctx.population`` when the attack asks for them)
and calibrates a decision threshold.

Calibration is leave-one-out on the reference models: each in turn plays the target,
on its own members and non-members, with the others as its references (and only
those that did not train on a sample count as OUT for it). A sample with too few OUT
references gets a NaN score there and is left out. One global threshold maximising
balanced accuracy over the pooled scores is kept; with a single shadow (nobody left
to be a reference) there is none. With more than
:attr:`ReferenceAttack.calibration_models` (16) references, a seeded draw of that many
play the target, each still against all the others: a model pool's 63 references on
10,000 samples each would fit one threshold to 630,000 scores, at four times the cost
of the attack itself, where 16 give it 160,000.

0.2 plugins that define ``statistic``, ``model_statistic`` and ``score(x, z)`` keep
working until 0.4, with a DeprecationWarning.

The protocol's :class:`~mibench.sdk.ReferenceRules` (``ctx.reference_rules``) say how the
tables may be used: under the pool protocol the base hands :meth:`ReferenceAttack.score`
tables with the same number of IN and OUT references for every sample
(:meth:`Table.balanced`), since the raw counts would tell the target's membership.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from mibench.sdk.attack import (Attack, AttackContext, AttackOutput, ModelView, ReferenceView,
                                deprecated, overrides)
from mibench.sdk.checks import model_signals, one_per_sample
from mibench.sdk.thresholds import best_threshold

@dataclass(frozen=True)
class Table:
    """A per-sample statistic of n samples under a target and under k reference models.

    ``target`` has shape (n,), ``refs`` (k, n); an attack whose signal has one value per
    query view (:meth:`ReferenceAttack.model_signal` of shape (n, q)) gets ``target``
    (n, q) and ``refs`` (k, n, q), the masks staying (k, n). ``out[j, i]`` is True when reference
    model j did not train on sample i, ``inside[j, i]`` when it did (a sample a
    defense carved out of j's split is neither). ``inside`` is all False for offline
    references (the paper's protocol) and for population samples.
    """

    target: np.ndarray
    refs: np.ndarray
    out: np.ndarray
    inside: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    @property
    def is_in(self) -> np.ndarray:
        """``inside``, or all False where it was not given."""
        return np.zeros_like(self.out) if self.inside is None else self.inside

    def balanced(self, per_side: int, seed: int = 0) -> "Table":
        """This table with ``per_side`` IN-side and ``per_side`` OUT references per sample (random ones).

        Under the pool protocol every sample is IN for exactly floor(M/2) models, so a
        target's membership fixes how many of its references are IN (a member has one
        IN reference fewer than a non-member). An attack that used every reference
        would score that count, not the model; a fixed number per side, the same for
        every sample (``per_side`` = floor(M/2) - 1 for a target's M - 1 references),
        removes it. The IN side is drawn from the references whose training split
        held the sample, and a reference that carved it out for a defense's
        reference set (AdvReg, DMP: the set shapes the released model) counts as IN
        here: the count of true members would again depend on the target's
        membership. Samples no reference trained on (population samples) keep all
        their OUT references.
        """
        split = ~self.out  # trained on the sample or carved it out of its split
        order = _key_order(self.out.shape, seed)

        def first(side: np.ndarray) -> np.ndarray:
            # A reference is kept when fewer than per_side references of its side come
            # before it in the column's random key order (its rank among the side).
            in_order = side.ravel()[order]
            count = np.cumsum(in_order.reshape(side.shape), 0, dtype=np.int32).ravel()
            kept = np.empty(side.size, dtype=bool)
            kept[order] = in_order & (count <= per_side)
            return kept.reshape(side.shape)

        pooled = split.any(0)
        out = np.where(pooled, first(self.out), self.out)
        return Table(self.target, self.refs, out, first(split))

    def out_mean(self) -> np.ndarray:
        """Mean of the statistic over each sample's OUT references (NaN where there are none)."""
        return masked_mean(self.refs, self.out)

    def in_mean(self) -> np.ndarray:
        """Mean of the statistic over each sample's IN references (NaN where there are none)."""
        return masked_mean(self.refs, self.is_in)


@functools.lru_cache(maxsize=8)
def _key_order(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Flat positions of a (k, n) table, each column's references in the order of seeded random keys.

    Row r of the result (reshaped to (k, n)) holds, for every column, the reference
    whose key ranks r-th there. Cached: calibration balances one table per reference
    model, all of the same shape and seed, so the draw and its sort are made once.
    Read-only, as it is shared.
    """
    k, n = shape
    order = (np.random.default_rng(seed).random(shape).argsort(0) * n + np.arange(n)).ravel()
    order.flags.writeable = False
    return order


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Column means of ``values`` (k, n) over the rows where ``mask`` (k, n) holds; NaN for an empty column.

    ``values`` may have trailing axes (k, n, q: one signal per query view), which the mask covers alike.
    """
    mask = side_mask(mask, values)
    count = mask.sum(0)
    total = np.where(mask, values, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def side_mask(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``mask`` (k, n) with an axis of length 1 per trailing axis of ``values`` (k, n, ...), to broadcast."""
    return mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim))


def _is_out(model: ReferenceView, indices: np.ndarray) -> np.ndarray:
    """True where ``model`` did not train on the sample: neither a member nor carved out of its split."""
    return ~np.isin(indices, model.members) & ~np.isin(indices, model.excluded)


class ReferenceAttack(Attack):
    """Scores each sample by comparing the target's output with the reference models' outputs."""

    calibration_models: int = 16  # at most this many references play the target in calibration (a seeded draw)

    def signal(self, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """One number per row of ``logits`` (float64), the quantity the attack compares."""
        if overrides(self, "statistic", ReferenceAttack):
            deprecated(f"{type(self).__name__}.statistic", "signal(logits, labels)")
            return self.statistic(logits, labels)
        raise NotImplementedError

    def population_size(self) -> int | None:
        """How many population samples :meth:`score` needs: 0 for none, None for all."""
        return 0

    def compare(self, x: Table, z: Table, ctx: AttackContext) -> np.ndarray:
        """One score per sample of ``x`` (higher = member), NaN where it cannot be scored.

        ``z`` holds population samples (none unless :meth:`population_size` asks):
        samples the target did not train on, each with at least one OUT reference.
        ``ctx`` is the run's context (how many reference models, the protocol's
        rules): read run state from it, never keep it on the instance.
        """
        if overrides(self, "score", ReferenceAttack):
            deprecated(f"{type(self).__name__}.score(x, z)", "compare(x, z, ctx)")
            return self.score(x, z)
        raise NotImplementedError

    # ------------------------------------------------------------------------ the run

    def model_signal(self, model: ModelView, indices: np.ndarray) -> np.ndarray:
        """The signal of ``model`` on pool samples ``indices``: :meth:`signal` of its cached logits.

        Override it to query the model on augmented views too (LiRA's ``augmentations``): it
        may return one value per sample (n,) or one per sample and view (n, q), in which case
        :meth:`compare` gets tables with that trailing axis.
        """
        if overrides(self, "model_statistic", ReferenceAttack):
            deprecated(f"{type(self).__name__}.model_statistic", "model_signal(model, indices)")
            return np.asarray(self.model_statistic(model, indices), dtype=np.float64)
        return np.asarray(self.signal(model.logits(indices).double(), model.labels(indices)), dtype=np.float64)

    def run(self, ctx: AttackContext) -> AttackOutput:
        shadows = ctx.references
        least = max(1, self.needs(self.params).count)
        if len(shadows) < least:
            raise ValueError(f"attack {self.name!r} needs at least {least} reference models, got {len(shadows)}")
        evals = ctx.eval_indices
        # Every shadow on the evaluation samples (the target's references), on its own samples
        # (the leave-one-out calibration) and on the population (the references of the
        # population samples z). Under the paper's protocol the last two are the shadow half;
        # under the pool protocol, the evaluation samples and the rest of the pool. Each shadow
        # is asked once, on all of them (an attack that queries views pays once per sample).
        own = np.unique(np.concatenate([np.concatenate([s.members, s.nonmembers]) for s in shadows]))
        population = np.asarray(ctx.population, dtype=np.int64)
        samples = np.union1d(own, population)
        asked = np.union1d(evals, samples)
        signals = np.stack([model_signals(self, s, asked) for s in shadows])
        stats = signals[:, np.searchsorted(asked, samples)]
        x = Table(
            model_signals(self, ctx.target, evals),
            signals[:, np.searchsorted(asked, evals)],
            np.stack([_is_out(s, evals) for s in shadows]),
            np.stack([np.isin(evals, s.members) for s in shadows]),
        )
        # As the protocol says (the pool's: as many references per side for every sample,
        # whatever the target's membership; one fewer in calibration, where a shadow is the target).
        x = ctx.reference_rules.apply(x)
        is_in = np.stack([np.isin(samples, s.members) for s in shadows])
        is_out = np.stack([_is_out(s, samples) for s in shadows])
        in_population = np.isin(samples, population)
        z_pos = self._draw_population(ctx.seed, is_out & in_population)
        z_target = model_signals(self, ctx.target, samples[z_pos]) if len(z_pos) else np.zeros((0,) + stats.shape[2:])
        # As the protocol says for z as well: z no reference trained on keep all their OUT
        # references; z drawn from the target's non-members (ReferenceNeeds.population)
        # get as many IN as OUT ones, like the evaluation samples.
        z = ctx.reference_rules.apply(Table(z_target, stats[:, z_pos], is_out[:, z_pos], is_in[:, z_pos]))

        scores = one_per_sample(self.compare(x, z, ctx), len(evals), self, "compare")
        if not np.isfinite(scores).all():
            raise ValueError(f"attack {self.name!r} could not score {int((~np.isfinite(scores)).sum())} target samples")
        threshold, n_cal = self._calibrate(stats, is_in, is_out, z_pos, ctx)
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
        self, stats: np.ndarray, is_in: np.ndarray, is_out: np.ndarray, z_pos: np.ndarray, ctx: AttackContext,
    ) -> tuple[float | None, int]:
        """Leave-one-out over (at most :attr:`calibration_models` of) the reference models: (global
        threshold or None, samples it was fitted on).

        The protocol's rules (``ctx.reference_rules``) apply with one reference per side held out.

        A sample a shadow neither trained on nor held out (a defense's carve-out) is
        not one of its calibration samples.
        """
        k = len(stats)
        scores, membership = [], []
        players = np.arange(k)
        if k > self.calibration_models:
            players = np.sort(np.random.default_rng(ctx.seed).choice(k, self.calibration_models, replace=False))
        for j in players:
            others = np.arange(k) != j
            refs, out = stats[others], is_out[others]
            if not len(refs):
                continue
            zj = z_pos[is_out[j, z_pos] & out[:, z_pos].any(0)]
            if self.population_size() != 0 and len(zj) == 0:
                continue
            inside = is_in[others]
            xj = Table(stats[j], refs, out, inside)
            zt = Table(stats[j, zj], refs[:, zj], out[:, zj], inside[:, zj])
            rules = ctx.reference_rules
            xj, zt = rules.apply(xj, held_out=1), rules.apply(zt, held_out=1)
            s = one_per_sample(self.compare(xj, zt, ctx), len(xj.target), self, "compare")
            keep = np.isfinite(s) & (is_in[j] | is_out[j])
            scores.append(s[keep])
            membership.append(is_in[j][keep])
        if not scores:
            return None, 0
        s, m = np.concatenate(scores), np.concatenate(membership)
        if m.all() or not m.any():
            return None, len(s)
        return best_threshold(s, m), len(s)
