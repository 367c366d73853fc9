"""Per-sample statistics of a model's output that defenses and attacks share.

Strongly overfit models put p_y within one rounding step of 1, where ``1 - p`` and
``log p`` computed from a rounded p lose every digit. The helpers here therefore work
in log space from the logits, and take the one class that can have p > 1/2 (a row's
top class) through its log-odds phi = g_c - logsumexp_{i != c} g_i, from which
log p_c = log sigmoid(phi) and log(1 - p_c) = log sigmoid(-phi) are both exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_log_odds(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """phi = log p_c - log(1 - p_c) = g_c - logsumexp_{i != c} g_i per row, for class ``classes[row]``."""
    c = classes.view(-1, 1)
    others = logits.scatter(1, c, float("-inf"))
    return logits.gather(1, c).squeeze(1) - torch.logsumexp(others, 1)


def hinge_margin(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """g_c - max_{i != c} g_i per row: the logit margin of class ``classes[row]`` over the best other class.

    Aerni et al. (2024) score RelaxLoss with it: RelaxLoss flattens the posterior, which
    squeezes the scaled logit, while the raw margin keeps its spread.
    """
    c = classes.view(-1, 1)
    return logits.gather(1, c).squeeze(1) - logits.scatter(1, c, float("-inf")).amax(1)


def _log_softmax_exact(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log p, each row's top class, its log-odds phi): log_softmax with the top entry from phi."""
    top = logits.argmax(1, keepdim=True)
    phi = class_log_odds(logits, top).unsqueeze(1)
    return F.log_softmax(logits, dim=1).scatter(1, top, F.logsigmoid(phi)), top, phi


def log_probs(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p, log(1 - p)) per entry of softmax(logits), both to a few ulps even at p ~ 1 or p ~ 0.

    Every class but a row's top one has p <= 1/2, where log_softmax and log1p(-p) are
    exact; the top class takes both from its log-odds (see the module docstring)."""
    log_p, top, phi = _log_softmax_exact(logits)
    p_rest = log_p.exp().scatter(1, top, 0.0)  # the top entry is replaced below; 0 keeps log1p finite
    return log_p, torch.log1p(-p_rest).scatter(1, top, F.logsigmoid(-phi))


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) per row, in nats, from exact log-probabilities (no log of a rounded 1 or 0)."""
    log_p = _log_softmax_exact(logits)[0]
    return -(log_p.exp() * log_p).sum(1)


def true_class_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """p_y = softmax(logits)_y per row."""
    return logits.softmax(1).gather(1, labels.view(-1, 1)).squeeze(1)
