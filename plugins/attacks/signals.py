"""The membership signals LiRA and RMIA can be given (``signal:``), one number per sample and model.

Adaptive attacks choose the signal for the defense (Aerni et al. 2024, REFERENCE §8):
RelaxLoss flattens the posterior, which squeezes the scaled logit, so they score it
with the logit margin. Every signal is computed in float64 from the logits, higher
meaning "more like a member":

- ``scaled-logit``: phi = g_y - logsumexp_{i != y} g_i = log p_y - log(1 - p_y) (LiRA's);
- ``hinge``: g_y - max_{i != y} g_i, the margin over the best other class;
- ``loss``: -CE = log p_y;
- ``confidence``: p_y.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mibench.sdk import class_log_odds, hinge_margin, true_class_prob

Signal = Literal["scaled-logit", "hinge", "loss", "confidence"]
SIGNALS: tuple[str, ...] = ("scaled-logit", "hinge", "loss", "confidence")

EXP_LIMIT = 700.0  # exp of a larger log-signal overflows float64; RMIA's odds and margins are clipped here


def membership_signal(signal: str, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """The ``signal`` of each row of ``logits`` for its label, in float64 (higher = member)."""
    logits = logits.double()
    if signal == "hinge":
        return hinge_margin(logits, labels).numpy()
    if signal == "confidence":
        return true_class_prob(logits, labels).numpy()
    phi = class_log_odds(logits, labels)
    if signal == "scaled-logit":
        return phi.numpy()
    if signal == "loss":
        return F.logsigmoid(phi).numpy()  # log p_y, exact where p_y rounds to 1
    raise ValueError(f"unknown signal {signal!r}; signals: {', '.join(SIGNALS)}")


def likelihood_signal(signal: str, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """RMIA's positive per-model quantity Pr(x | theta) for ``signal`` (its ratios are the attack's LR).

    ``confidence`` is p_y (the paper's); ``loss`` is exp(-CE) = p_y as well, so both give
    the same attack; ``scaled-logit`` is exp(phi) = p_y / (1 - p_y), the odds; ``hinge``
    is exp(margin). Log-signals are clipped at +-700 before the exponential.
    """
    if signal in ("confidence", "loss"):
        return true_class_prob(logits.double(), labels).numpy()
    return np.exp(np.clip(membership_signal(signal, logits, labels), -EXP_LIMIT, EXP_LIMIT))
