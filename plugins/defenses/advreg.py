"""Adversarial regularisation (Nasr, Shokri & Houmansadr, CCS 2018): a min-max game with an inference model."""

from __future__ import annotations

from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mibench.sdk import (
    Defense,
    Objective,
    OptimizerConfig,
    Params,
    TrainedModel,
    Trainer,
    TrainingContext,
    as_index,
    carve_reference,
    hookimpl,
    predict_logits,
)


class AdvRegParams(Params):
    alpha: float = Field(1.0, ge=0, description="Weight of the privacy term in the classifier's loss.")
    inference_steps: int = Field(5, ge=1, description="Inference-model steps after each classifier step (k).")
    warmup_epochs: int = Field(
        3, ge=0, description="First epochs of plain cross-entropy for the classifier (the inference model trains)."
    )
    reference_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of the training split carved out as the inference model's non-members."
    )
    inference_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the inference model.")
    privacy_term: Literal["log", "linear"] = Field(
        "log", description="log: alpha * mean log h (Nasr et al.); linear: alpha * mean (h - 0.5) (the authors' codes)."
    )


class InferenceModel(nn.Module):
    """h(sorted softmax, one-hot label) -> membership logit (Nasr et al.'s two-branch attack model).

    The softmax branch is C-1024-512-64, the label branch C-512-64, and the head
    128-256-64-1, all ReLU. Every layer sits in an ``nn.Sequential``, so all of
    them train (the RelaxLoss code kept its hidden layers in a plain list).
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.scores = nn.Sequential(
            nn.Linear(num_classes, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 64), nn.ReLU()
        )
        self.label = nn.Sequential(nn.Linear(num_classes, 512), nn.ReLU(), nn.Linear(512, 64), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores = F.softmax(logits, dim=1).sort(dim=1, descending=True).values
        label = F.one_hot(labels, self.num_classes).float()
        return self.head(torch.cat([self.scores(scores), self.label(label)], dim=1)).squeeze(1)


def endless_batches(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, un-augmented batches, epoch after epoch: what an attacker queries."""
    while True:
        yield from trainer.batches(x, y, augment=False)


class AdversarialObjective(Objective):
    """Cross-entropy plus alpha times the inference model's privacy term; ``step`` plays the attacker.

    The inference model h is this objective's own state: after each classifier
    step, :meth:`step` trains it for ``inference_steps`` Adam steps with binary
    cross-entropy to tell the classifier's outputs on member batches (label 1)
    from those on reference batches (label 0), the classifier in eval mode.
    """

    def __init__(
        self, params: AdvRegParams, classifier: nn.Module, trainer: Trainer, members: np.ndarray, reference: np.ndarray
    ) -> None:
        super().__init__()
        self.params = params
        # The trainer updates the classifier; an nn.Module attribute would make it part of
        # this objective's parameters, so it is kept as a plain reference.
        object.__setattr__(self, "classifier", classifier)
        self.trainer = trainer
        self.inference = InferenceModel(trainer.pool.num_classes).to(trainer.device)
        adam = OptimizerConfig(name="adam", lr=params.inference_lr, weight_decay=0.0)
        self.inference_optimizer = trainer.make_optimizer(self.inference.parameters(), adam)
        self.members = self._stream(members)
        self.reference = self._stream(reference)

    def _stream(self, indices: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        labels = self.trainer.pool.labels[as_index(indices)].to(self.trainer.device)
        return endless_batches(self.trainer, self.trainer.inputs(indices), labels)

    def forward(self, logits, features, targets, epoch):
        loss = F.cross_entropy(logits, targets)
        if epoch <= self.params.warmup_epochs:
            return loss
        z = self.inference(logits, targets)
        term = F.logsigmoid(z).mean() if self.params.privacy_term == "log" else (torch.sigmoid(z) - 0.5).mean()
        return loss + self.params.alpha * term

    def step(self) -> None:
        self.classifier.eval()
        for _ in range(self.params.inference_steps):
            (xm, ym), (xr, yr) = next(self.members), next(self.reference)
            with torch.no_grad(), self.trainer.autocast():
                member_logits, _ = self.classifier(xm)
                reference_logits, _ = self.classifier(xr)
            z_member = self.inference(member_logits.float(), ym)
            z_reference = self.inference(reference_logits.float(), yr)
            loss = 0.5 * (
                F.binary_cross_entropy_with_logits(z_member, torch.ones_like(z_member))
                + F.binary_cross_entropy_with_logits(z_reference, torch.zeros_like(z_reference))
            )
            self.inference_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.inference_optimizer.step()
        self.classifier.train()

    @torch.no_grad()
    def balanced_accuracy(self, members: np.ndarray, reference: np.ndarray) -> float:
        """How well h tells members from reference samples at 0.5 (0.5 is a coin flip)."""
        rates = []
        for indices, member in ((members, True), (reference, False)):
            logits = predict_logits(
                self.classifier, self.trainer.pool, indices, self.trainer.device, self.trainer.config.eval_batch_size
            ).to(self.trainer.device)
            labels = self.trainer.pool.labels[as_index(indices)].to(self.trainer.device)
            called = self.inference(logits, labels) > 0
            rates.append(float((called == member).float().mean()))
        return 0.5 * sum(rates)


class AdvReg(Defense):
    """Adversarial regularisation (Nasr et al. 2018): the classifier plays a min-max game with an inference model.

    A ``reference_fraction`` share of the training split (stratified, seeded by
    the model's seed; the CRL code carves 0.2) becomes the inference model's
    non-members and is not trained on; the rest are the classifier's training
    data and the evaluation members (REFERENCE §1). The inference model h sees
    the sorted softmax output and the one-hot label (REFERENCE §3; the CRL and
    RelaxLoss codes sort too, raw logits; sorting hides which score is the
    label's, so h judges confidence rather than correctness), and trains with Adam
    (lr 1e-3) and binary cross-entropy, ``inference_steps`` steps after every
    classifier step (Nasr et al.'s Algorithm 1 with k = 5). The classifier
    minimises CE + alpha * mean log h over its training batch (REFERENCE §3;
    ``privacy_term: linear`` uses alpha * mean (h - 0.5), as the CRL and
    RelaxLoss codes do), after ``warmup_epochs`` of plain CE. Defaults alpha 1,
    k 5 and 3 warm-up epochs are RelaxLoss's.
    """

    name = "advreg"
    training_cost = 4.0  # each step adds 5 inference-model steps, each a classifier forward on two batches
    Params = AdvRegParams

    def train(self, ctx: TrainingContext) -> TrainedModel:
        members, reference = carve_reference(ctx, self.params.reference_fraction)
        model = ctx.build_model()
        objective = AdversarialObjective(self.params, model, ctx.trainer, members, reference)
        ctx.trainer.fit(model, members, objective)
        info = {
            "reference_size": int(len(reference)),
            "inference_balanced_acc": round(objective.balanced_accuracy(members, reference), 4),
        }
        return TrainedModel(model, members, info)


@hookimpl
def register_defenses(register):
    register(AdvReg)
