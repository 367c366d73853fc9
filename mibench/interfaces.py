"""Deprecated: the plugin interfaces now live in :mod:`mibench.sdk` (kept for 0.1 plugins; removed in 0.3)."""

from mibench.sdk import *  # noqa: F401,F403
from mibench.sdk import TrainingContext as TrainingJob  # noqa: F401 - the 0.1 name
