"""Seeds derived from the grid's seeds: stable across processes and machines."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def derived_seed(*parts: Any) -> int:
    """A 31-bit seed derived from ``parts``."""
    text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def shadow_seed(target_seed: int, i: int) -> int:
    """The seed of shadow model ``i`` of the target with ``target_seed``."""
    return derived_seed(target_seed, "shadow", i)
