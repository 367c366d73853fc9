"""A content-addressed store of job outputs inside a run directory.

Every object lives at ``<root>/<kind>/<key>.<ext>`` where ``key`` is the hash of
everything that produced it. Writes are atomic (a temporary file, then a rename),
so a run killed mid-write leaves either the whole object or nothing, and a run
started again finds exactly the finished work.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def stable_hash(obj: Any, length: int = 20) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """Job outputs by kind and key, under one root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / f"{key}.{ext}"

    def has(self, kind: str, key: str, ext: str) -> bool:
        return self.path(kind, key, ext).exists()

    # JSON: configs and small results
    def save_json(self, kind: str, key: str, obj: Any) -> Path:
        path = self.path(kind, key, "json")
        atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())
        return path

    def load_json(self, kind: str, key: str) -> Any:
        return json.loads(self.path(kind, key, "json").read_text())

    # torch: model weights and logits, read back with weights_only=True
    def save_torch(self, kind: str, key: str, obj: Any) -> Path:
        buf = io.BytesIO()
        torch.save(obj, buf)
        path = self.path(kind, key, "pt")
        atomic_write(path, buf.getvalue())
        return path

    def load_torch(self, kind: str, key: str, map_location: str | torch.device = "cpu") -> Any:
        return torch.load(self.path(kind, key, "pt"), map_location=map_location, weights_only=True)

    # numpy: index sets and attack scores
    def save_arrays(self, kind: str, key: str, **arrays: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path = self.path(kind, key, "npz")
        atomic_write(path, buf.getvalue())
        return path

    def load_arrays(self, kind: str, key: str) -> dict[str, np.ndarray]:
        with np.load(self.path(kind, key, "npz"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
