"""Checks of what plugin code returns, so that a mistake is named where it is made.

A score array one short, or of strings, would otherwise fail far away (a broadcast in a
table, a boolean index in a threshold search) with a message that names neither the
plugin nor the method; these checks raise :class:`PluginOutputError`, which names both and
says what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class PluginOutputError(ValueError):
    """A plugin method returned something of the wrong shape or kind."""


def owner(plugin: Any) -> str:
    """How an error names ``plugin``: its kind, registered name and class, e.g. ``attack 'lira' (LiRAAttack)``."""
    return f"{getattr(plugin, 'kind', 'plugin')} {getattr(plugin, 'name', '?')!r} ({type(plugin).__name__})"


def one_per_sample(values: Any, samples: int, plugin: Any, method: str) -> np.ndarray:
    """``values`` as float64, after checking that they are numbers with one row per sample (``samples`` rows)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise PluginOutputError(f"{owner(plugin)}: {method} returned values of type {array.dtype}; it must return "
                                "numbers, one per sample")
    if array.ndim == 0 or array.shape[0] != samples:
        got = "a single number" if array.ndim == 0 else f"{array.shape[0]:,} values"
        raise PluginOutputError(f"{owner(plugin)}: {method} returned {got} for {samples:,} samples; it must return "
                                "one per sample, in the order of the samples it was given")
    return array.astype(np.float64, copy=False)


def model_signals(attack: Any, model: Any, indices: np.ndarray) -> np.ndarray:
    """``attack.model_signal(model, indices)``, checked by :func:`one_per_sample` (one value or row per sample)."""
    return one_per_sample(attack.model_signal(model, indices), len(indices), attack, "model_signal")
