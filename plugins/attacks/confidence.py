"""Attacks that threshold a score of the target's output (REFERENCE §4): loss, entropy,
modified entropy. Thresholds are calibrated per class on the shadow models."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mibench.sdk import ThresholdAttack, hookimpl, softmax_entropy

TINY = 1e-30  # clamp inside logs, as Song & Mittal's code does


class LossAttack(ThresholdAttack):
    """Loss attack (Yeom et al. 2018): score = -CE(logits, label)."""

    name = "loss"

    def score(self, logits, labels):
        return -F.cross_entropy(logits, labels, reduction="none")


def entropy_score(logits: torch.Tensor) -> torch.Tensor:
    return -softmax_entropy(logits)


class EntropyAttack(ThresholdAttack):
    """Entropy attack: score = -H(p) = sum_i p_i log p_i (from log-softmax); confident outputs look like members."""

    name = "entropy"

    def score(self, logits, labels):
        return entropy_score(logits)


def modified_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mentr(p, y) = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i) (Song & Mittal 2021)."""
    p = logits.softmax(1)
    p_y = p.gather(1, labels.view(-1, 1)).squeeze(1)
    true_term = -(1 - p_y) * p_y.clamp_min(TINY).log()
    others = -p * (1 - p).clamp_min(TINY).log()
    others_sum = others.sum(1) - others.gather(1, labels.view(-1, 1)).squeeze(1)
    return true_term + others_sum


class ModifiedEntropyAttack(ThresholdAttack):
    """Modified-entropy attack (Song & Mittal 2021): score = -Mentr(p, y)."""

    name = "m-entropy"

    def score(self, logits, labels):
        return -modified_entropy(logits, labels)


@hookimpl
def register_attacks(register):
    register(LossAttack)
    register(EntropyAttack)
    register(ModifiedEntropyAttack)
