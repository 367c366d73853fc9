"""Deprecated 0.1 import path (removed in 0.4): the plugin interfaces live in :mod:`mibench.sdk`."""

from mibench._moved import warn_moved

warn_moved(__name__, "mibench.sdk")

from mibench.sdk import *  # noqa: E402,F401,F403
from mibench.sdk import TrainingContext as TrainingJob  # noqa: E402,F401 - the 0.1 name
