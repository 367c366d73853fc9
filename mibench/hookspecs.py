"""Deprecated: the hook marker and specs now live in :mod:`mibench.sdk` (kept for 0.1 plugins; removed in 0.3)."""

from mibench.sdk.hooks import *  # noqa: F401,F403
