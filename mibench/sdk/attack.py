"""The attack interface: a plugin that scores the target's evaluation samples.

An attack sees models only through views. The target's :class:`ModelView` has no
member list, and its evaluation samples come in pool order, so an attack cannot read
the answer it is asked for: membership stays in the engine, which computes every
metric from the scores. Reference models (the paper protocol's shadows, a pool's
other models) are the attacker's own, so their :class:`ReferenceView` does carry their
members and non-members.

One word per concept: a *signal* is a per-model statistic of a sample (the loss,
LiRA's scaled logit); a *decision rule* turns signals into scores and calls members
(a per-class or global threshold calibrated on the reference models, or a comparison
with the reference models' signals); *reference models* are every model an attack
trains or is given besides the target (the grid's ``shadow:`` key configures them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from mibench.sdk.dataset import Pool
from mibench.sdk.params import Plugin

ThresholdMode = Literal["per-class", "global", "none"]


@runtime_checkable
class ModelView(Protocol):
    """What an attack may see of a model (the target): outputs, never membership.

    - :meth:`logits` on pool samples is black-box access (cached per model).
    - :meth:`query` on inputs the attack builds itself (augmented or noisy copies)
      is black-box access too; every image sent counts in :attr:`queries`.
    - :meth:`module` is white-box access, granted only to attacks that declare
      ``needs_white_box`` against models whose defense releases weights.
    """

    key: str
    pool: Pool
    device: torch.device
    info: dict[str, Any]
    queries: int

    def logits(self, indices: np.ndarray) -> torch.Tensor:
        """Logits on pool samples ``indices`` (float32, CPU)."""

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (float32, CPU) on ``images``: N x C x H x W floats in [0, 1], like ``pool.inputs / pool.scale``."""

    def labels(self, indices: np.ndarray) -> torch.Tensor:
        """True labels of pool samples ``indices``."""

    def module(self) -> nn.Module:
        """The network in eval mode (white box); raises PermissionError for a black-box model."""


@runtime_checkable
class ReferenceView(ModelView, Protocol):
    """A reference model: the attacker trained it, so it knows its splits.

    ``members`` trained it, ``nonmembers`` were held out; ``excluded`` are samples of
    its training split that its defense carved out (a reference set): neither.
    """

    members: np.ndarray
    nonmembers: np.ndarray
    excluded: np.ndarray


ShadowView = ReferenceView  # the 0.2 name, kept until 0.4


def deprecated(old: str, new: str) -> None:
    """Warn that a plugin uses the 0.2 SDK's ``old`` (it keeps working until 0.4)."""
    warnings.warn(f"{old} is deprecated since mibench 0.3 and goes in 0.4; use {new}", DeprecationWarning,
                  stacklevel=3)


def overrides(obj: Any, name: str, base: type) -> bool:
    """Whether ``obj``'s class defines ``name`` below ``base`` (a 0.2 plugin's hook method or attribute)."""
    for klass in type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__:
        if klass is base:
            return False
        if name in vars(klass):
            return True
    return False


@dataclass(frozen=True)
class ReferenceNeeds:
    """What an attack needs of reference models; the planner reads only this.

    ``count``: at least this many (0: the attack uses none; the grid's
    ``shadow.count`` says how many are trained). Under ``protocol: pool`` it is the
    references needed per sample on each side (IN and OUT): a pool of M models gives
    M // 2 - 1 of each. ``mode``: ``offline`` shadows never
    train on the target's evaluation samples (the paper's protocol); ``online``
    ones train on half of them each (a later protocol). ``training``: ``grid``
    follows the grid's ``shadow.training``; ``like-target`` always trains them with
    the target's defense config; ``plain`` always with the grid's
    ``shadow.plain`` defense (``ce`` by default). ``population``: where
    ``ctx.population`` comes from: ``never-trained`` (the protocol's samples no evaluated
    model trained on) or ``target-nonmembers`` (the target's own non-members, canaries
    left out, as RMIA's authors' online code draws its z: the attack is then told which
    of its evaluation samples are non-members, an auditor's game, not a black-box one).
    """

    count: int = 1
    mode: Literal["offline", "online"] = "offline"
    training: Literal["grid", "like-target", "plain"] = "grid"
    population: Literal["never-trained", "target-nonmembers"] = "never-trained"

    @property
    def uses_references(self) -> bool:
        return self.count > 0

    @property
    def uses_shadows(self) -> bool:  # the 0.2 name
        return self.uses_references


NO_REFERENCES = ReferenceNeeds(count=0)
ShadowNeeds = ReferenceNeeds  # the 0.2 names, kept until 0.4
NO_SHADOWS = NO_REFERENCES


@dataclass(frozen=True)
class ReferenceRules:
    """How the protocol lets an attack use each sample's reference models (set by the engine).

    ``per_side`` None: every reference as it is. An integer n: the same number, n IN and n
    OUT, for every sample (:meth:`~mibench.sdk.reference_attack.Table.balanced`): under a
    design where every sample is IN for a fixed number of models (the pool protocol), the
    raw count of a sample's IN references would tell the target's membership.
    """

    per_side: int | None = None

    def apply(self, table: Any, held_out: int = 0, seed: int = 0) -> Any:
        """``table`` as attacks may see it; ``held_out``: references per side the table lacks (a
        reference model playing the target in calibration leaves its side one short)."""
        if self.per_side is None:
            return table
        return table.balanced(self.per_side - held_out, seed)


@dataclass
class AttackOutput:
    """An attack's answer for the target's evaluation samples.

    ``scores`` has one value per sample of ``ctx.eval_indices``, in that order:
    higher means "more likely a member". ``thresholds`` is the decision rule the
    attack calibrated: an array of one threshold per class
    (``threshold_mode="per-class"``), one float (``"global"``), or None. A sample
    is called a member when its score is >= its threshold. The engine computes
    every metric from these.
    """

    scores: np.ndarray
    thresholds: np.ndarray | float | None = None
    threshold_mode: ThresholdMode = "none"
    info: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class AttackContext:
    """What an attack may use: the target's view, its evaluation samples, the shadows.

    ``eval_indices`` are the pool indices to score, in pool order (about half of
    them members, which the attack is not told). Each shadow in ``shadows`` comes
    with its own members and non-members. ``population`` holds pool indices of data
    from the target's distribution that the target never saw; reference-model
    attacks draw population samples ``z`` from it. ``seed`` seeds whatever the
    attack draws at random.

    Under ``protocol: paper`` the reference models are shadows that trained on halves
    of the population and never on an evaluation sample (offline). Under ``protocol:
    pool`` they are the pool's other models: each trained on about half of the
    evaluation samples (online), none on the population, and ``pool_models`` is M. Every sample is IN for exactly M // 2 models, so the number
    of a sample's IN references gives the target's membership away: an attack must
    use the same number of references per sample whatever the target's membership;
    ``reference_rules`` (set by the protocol) says how many, and
    :class:`~mibench.sdk.reference_attack.ReferenceAttack` applies them.
    """

    pool: Pool
    target: ModelView
    references: list[ReferenceView]
    device: torch.device
    seed: int
    eval_indices: np.ndarray
    population: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pool_models: int = 0  # protocol: pool: M, the target and its M - 1 references; 0 under the paper's protocol
    reference_rules: ReferenceRules = field(default_factory=ReferenceRules)

    @property
    def shadows(self) -> list[ReferenceView]:
        """The 0.2 name of :attr:`references`, kept until 0.4."""
        deprecated("AttackContext.shadows", "AttackContext.references")
        return self.references


class Attack(Plugin):
    """Scores the target's evaluation samples; higher means member.

    Declare ``needs_white_box`` for an attack that reads weights or gradients,
    :meth:`needs` for what it needs of reference models, and :meth:`queries` (or
    its default, the class attribute ``query_cost``: model passes per sample and
    model, beyond one cached prediction) for ``mibench validate``'s compute estimate.
    """

    kind: ClassVar[str] = "attack"
    needs_white_box: ClassVar[bool] = False
    # True where the scores come from a model fit on the reference models' own members and
    # non-members (the NN attack's classifier): a design whose references lack clean
    # non-members (a leave-one-out canary audit) refuses it.
    fits_on_reference_samples: ClassVar[bool] = False
    query_cost: ClassVar[float] = 0.0
    shadow_needs: ClassVar[ReferenceNeeds] = ReferenceNeeds()  # 0.2: read by needs() when a class sets it

    @classmethod
    def needs(cls, params: Any) -> ReferenceNeeds:
        """What this attack, with ``params``, needs of reference models: one, trained as the grid says.

        The one way to declare it: override it (``return NO_REFERENCES`` for an attack
        that uses none; LiRA's ``mode: online`` needs references trained on the
        evaluation samples). The planner and ``mibench validate`` read only this. A 0.2
        class attribute ``shadow_needs`` is still read, with a DeprecationWarning.
        """
        if overrides(cls, "shadow_needs", Attack):
            deprecated(f"{cls.__name__}.shadow_needs", "a needs(cls, params) classmethod")
            return cls.shadow_needs
        return ReferenceNeeds()

    @classmethod
    def queries(cls, params: Any) -> float:
        """Model passes per sample and model that this attack, with ``params``, makes beyond the cached prediction.

        ``mibench validate``'s compute estimate reads only this; the default is the class's
        ``query_cost``. Override it where params change the count (the number of query
        views); black-box queries should equal what the attack sends through
        :meth:`ModelView.query` per sample, which the suite checks for the built-ins.
        """
        return float(cls.query_cost)

    def run(self, ctx: AttackContext) -> AttackOutput:
        raise NotImplementedError
