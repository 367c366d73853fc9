"""Deprecated 0.1 import path (removed in 0.4): these names live in :mod:`mibench.sdk`."""

from mibench._moved import warn_moved

warn_moved(__name__, "mibench.sdk")

from mibench.sdk.outputs import class_log_odds, log_probs, softmax_entropy, true_class_prob  # noqa: E402,F401
