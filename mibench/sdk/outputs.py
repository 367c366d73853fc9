"""Per-sample statistics of a model's output that defenses and attacks share."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) per row, in nats, from log-softmax (no log of a rounded zero)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(1)


def true_class_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """p_y = softmax(logits)_y per row."""
    return logits.softmax(1).gather(1, labels.view(-1, 1)).squeeze(1)
