"""Deprecated 0.1 import path (removed in 0.4): these names live in :mod:`mibench.sdk`."""

from mibench._moved import warn_moved

warn_moved(__name__, "mibench.sdk")

from mibench.sdk.reference_attack import ReferenceAttack, Table  # noqa: E402,F401
