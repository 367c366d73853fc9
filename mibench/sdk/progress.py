"""Progress bars for long work (training, predictions, attacks).

tqdm writes to stderr and switches itself off when stderr is not a terminal, so
logs of CI runs stay readable. ``MIBENCH_PROGRESS=0`` switches bars off, ``=1`` on.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def _enabled() -> bool | None:
    setting = os.environ.get("MIBENCH_PROGRESS", "").strip().lower()
    if setting in {"0", "false", "off", "no"}:
        return False
    if setting in {"1", "true", "on", "yes"}:
        return True
    return None  # tqdm decides: on for a terminal


def progress_bar(**kwargs) -> tqdm:
    """A tqdm bar with mibench's defaults; use as a context manager."""
    enabled = _enabled()
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(disable=None if enabled is None else not enabled, **kwargs)
