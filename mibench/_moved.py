"""The warning every 0.1 import path gives: the module moved into :mod:`mibench.sdk`."""

from __future__ import annotations

import warnings

REMOVED_IN = "0.4"


def warn_moved(old: str, new: str) -> None:
    """Warn once per import of ``old`` that it is deprecated and names its new import path."""
    warnings.warn(f"{old} is deprecated and will be removed in mibench {REMOVED_IN}; import from {new} instead",
                  DeprecationWarning, stacklevel=3)
