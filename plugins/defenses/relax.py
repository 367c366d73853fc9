"""Pieces shared by the relaxation defenses (RelaxLoss, CRL and its ablations).

Epochs are counted from 1, as in the CRL paper's Algorithm 1: on even epochs a
relaxed loss L becomes |L - alpha| (gradient ascent once L < alpha); on odd epochs
L is kept while L > alpha, and a softer objective takes over below it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mibench.sdk import true_class_prob as _true_class_prob


def relaxed(loss: torch.Tensor, alpha: float, epoch: int, below: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The three-way relaxation: |L - alpha| (even epoch), L (odd, L > alpha), ``below()`` (odd, L <= alpha).

    The odd-epoch choice is made on the device (no host round trip per batch);
    the gradient flows only through the branch taken.
    """
    if epoch % 2 == 0:
        return (loss - alpha).abs()
    return torch.where(loss > alpha, loss, below())


def scale_norm(v: torch.Tensor, tau: float) -> torch.Tensor:
    """Row-wise v / (1 + tau * ||v||_2): the CRL paper's normalisation (eq. 5, Alg. 1 line 7)."""
    if tau == 0:
        return v
    return v / (1.0 + tau * torch.linalg.vector_norm(v, dim=1, keepdim=True))


def true_class_prob(logits: torch.Tensor, labels: torch.Tensor, upper: float = 1.0) -> torch.Tensor:
    """p_y = softmax(logits)_y, clamped at ``upper`` (the authors' codes' clamp; 1.0 = none)."""
    return _true_class_prob(logits, labels).clamp(max=upper)


def flattened_target(p_y: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Soft target with t_y = p_y and the rest spread evenly: t_i = (1 - p_y) / (C - 1)."""
    rest = ((1.0 - p_y) / (num_classes - 1)).unsqueeze(1)
    target = rest.expand(-1, num_classes).clone()
    return target.scatter(1, labels.view(-1, 1), p_y.unsqueeze(1))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-sum_i t_i log softmax(logits)_i per sample, averaged over the batch by default."""
    per_sample = -(target * F.log_softmax(logits, dim=1)).sum(1)
    return per_sample.mean() if reduction == "mean" else per_sample
