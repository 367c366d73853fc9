"""Deprecated 0.1 import path (removed in 0.4): the hook marker and specs live in :mod:`mibench.sdk`."""

from mibench._moved import warn_moved

warn_moved(__name__, "mibench.sdk")

from mibench.sdk.hooks import *  # noqa: E402,F401,F403
