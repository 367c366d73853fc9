"""The membership signals LiRA and RMIA can be given (``signal:``), one number per sample and model.

Adaptive attacks choose the signal for the defense (Aerni et al. 2024, REFERENCE §8):
RelaxLoss flattens the posterior, which squeezes the scaled logit, so they score it
with the logit margin. Every signal is computed in float64 from the logits, higher
meaning "more like a member":

- ``scaled-logit``: phi = g_y - logsumexp_{i != y} g_i = log p_y - log(1 - p_y) (LiRA's);
- ``hinge``: g_y - max_{i != y} g_i, the margin over the best other class;
- ``loss``: -CE = log p_y;
- ``confidence``: p_y.

RMIA's Pr(x | theta) can also be one of its authors' signals (privacytrustlab/ml_privacy_meter,
research/2023_rmia, signals.py), with the logits g divided by a temperature T and a margin m:

- ``softmax``: softmax(g / T)_y;
- ``soft-margin``: e^(g_y/T - m) / (e^(g_y/T - m) + sum_{i != y} e^(g_i/T)) = sigmoid(phi_T - m),
  phi_T the scaled logit of g / T (computed so, stably);
- ``taylor-soft-margin``: the same with e^u replaced by its Taylor polynomial of order n,
  t(u) = sum_{j < n} u^j / j! (n = 4: 1 + u + u^2/2 + u^3/6), the authors' reproduction
  configs' signal (T 2, m 0.6, n 4). t is not positive everywhere (n = 4: below u = -1.6);
  that is the authors' form, kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mibench.sdk import class_log_odds, hinge_margin, true_class_prob

Signal = Literal["scaled-logit", "hinge", "loss", "confidence"]
SIGNALS: tuple[str, ...] = ("scaled-logit", "hinge", "loss", "confidence")
LikelihoodSignal = Literal["confidence", "loss", "scaled-logit", "hinge", "softmax", "soft-margin",
                           "taylor-soft-margin"]

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


def taylor_exp(u: torch.Tensor, order: int) -> torch.Tensor:
    """sum_{j < order} u^j / j!: the Taylor polynomial of e^u that RMIA's authors' signal uses."""
    term, total = torch.ones_like(u), torch.ones_like(u)
    for j in range(1, order):
        term = term * u / j
        total = total + term
    return total


def likelihood_signal(signal: str, logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                      margin: float = 0.0, order: int = 4) -> np.ndarray:
    """RMIA's positive per-model quantity Pr(x | theta) for ``signal`` (its ratios are the attack's LR).

    ``confidence`` is p_y (the paper's); ``loss`` is exp(-CE) = p_y as well, so both give
    the same attack; ``scaled-logit`` is exp(phi) = p_y / (1 - p_y), the odds; ``hinge``
    is exp(margin). Log-signals are clipped at +-700 before the exponential. ``softmax``,
    ``soft-margin`` and ``taylor-soft-margin`` are the authors' (module docstring), with
    ``temperature``, ``margin`` and the Taylor ``order``.
    """
    logits = logits.double()
    if signal in ("confidence", "loss"):
        return true_class_prob(logits, labels).numpy()
    if signal == "softmax":
        return true_class_prob(logits / temperature, labels).numpy()
    if signal == "soft-margin":
        return torch.sigmoid(class_log_odds(logits / temperature, labels) - margin).numpy()
    if signal == "taylor-soft-margin":
        scaled = logits / temperature
        rows = torch.arange(len(labels))
        expanded = taylor_exp(scaled, order)
        true = taylor_exp(scaled[rows, labels] - margin, order)
        return (true / (expanded.sum(1) - expanded[rows, labels] + true)).numpy()
    return np.exp(np.clip(membership_signal(signal, logits, labels), -EXP_LIMIT, EXP_LIMIT))
