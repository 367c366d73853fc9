"""Attacks that threshold a score of the target's output (REFERENCE §4): loss, entropy,
modified entropy. Thresholds are calibrated per class on the shadow models."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mibench.sdk import ThresholdAttack, class_log_odds, hookimpl, log_probs, softmax_entropy


class LossAttack(ThresholdAttack):
    """Loss attack (Yeom et al. 2018): score = -CE(logits, label) = log p_y."""

    name = "loss"

    def signal(self, logits, labels):
        # log p_y = log sigmoid(phi_y): unlike cross_entropy (g_y - logsumexp g), it keeps
        # its digits when p_y is within a rounding step of 1 (logit gaps past ~37 in float64).
        return F.logsigmoid(class_log_odds(logits, labels))


def entropy_score(logits: torch.Tensor) -> torch.Tensor:
    return -softmax_entropy(logits)


class EntropyAttack(ThresholdAttack):
    """Entropy attack: score = -H(p) = sum_i p_i log p_i (from log-softmax); confident outputs look like members."""

    name = "entropy"

    def signal(self, logits, labels):
        return entropy_score(logits)


def modified_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mentr(p, y) = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i) (Song & Mittal 2021).

    Computed from the logits in log space, with no clamps: log p_y and log(1 - p_y) come
    from phi_y = g_y - logsumexp_{i != y} g_i, and log(1 - p_i) from the other classes'
    probabilities where p_i is near 1 (see :func:`mibench.sdk.log_probs`), so
    overfit samples whose 1 - p_y rounds to 0 still get distinct scores."""
    y = labels.view(-1, 1)
    phi_y = class_log_odds(logits, labels)
    true_term = -F.logsigmoid(-phi_y).exp() * F.logsigmoid(phi_y)  # -(1 - p_y) log p_y
    log_p, log_1mp = log_probs(logits)
    others = -(log_p.exp() * log_1mp)  # 0 where p_i underflows to 0 (log1p(-0) = 0)
    return true_term + others.scatter(1, y, 0.0).sum(1)  # drop i = y before summing, not after


class ModifiedEntropyAttack(ThresholdAttack):
    """Modified-entropy attack (Song & Mittal 2021): score = -Mentr(p, y)."""

    name = "m-entropy"

    def signal(self, logits, labels):
        return -modified_entropy(logits, labels)


@hookimpl
def register_attacks(register):
    register(LossAttack)
    register(EntropyAttack)
    register(ModifiedEntropyAttack)
