"""Reading the CIFAR batch pickles without running code from the data folder.

A pickle can name any importable callable and have it called while loading, so a
"batch file" under ``params.root`` could run anything. The official CIFAR files hold
only dicts, lists, strings, numbers and numpy arrays; :func:`load_batch` admits
exactly the globals those need (numpy's array reconstructor, ``ndarray``, ``dtype``,
and ``_codecs.encode`` for bytes written by Python 3) and refuses every other one
with the name it asked for.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

ALLOWED = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR batch holds arrays, lists, "
                                         "strings and numbers only")
        return super().find_class(module, name)


def load_batch(path: Path) -> dict[str, Any]:
    """One CIFAR batch file as a dict with str keys (Python 2 strings read as latin-1, as torchvision does)."""
    with open(path, "rb") as fh:
        return RestrictedUnpickler(fh, encoding="latin1").load()


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
