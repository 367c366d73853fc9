"""Deprecated 0.1 import path (removed in 0.4): these names live in :mod:`mibench.sdk`."""

from mibench._moved import warn_moved

warn_moved(__name__, "mibench.sdk")

from mibench.sdk.batches import Normaliser, as_index, map_batches, model_batches, model_inputs, unit_inputs  # noqa: E402,F401
