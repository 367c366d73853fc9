"""A content-addressed store of job outputs inside a run directory, that never serves a damaged object.

Every object lives at ``<root>/<kind>/<key>.<ext>`` where ``key`` is the hash of
everything that produced it, with the SHA-256 of its bytes beside it in
``<key>.<ext>.sha256``. Writes are atomic and durable: the bytes go to a temporary
file that is fsynced, renamed into place, and the directory fsynced, the digest written the
same way just before; so a run killed (or a machine losing power) mid-write leaves
either the whole object or one that is not yet finished, never an empty or partial
object under a final name that counts as done.

Reads verify the digest. An object that does not match it, cannot be parsed, or
lacks its digest (a write cut short) is moved aside to ``<root>/quarantine/`` (kept
for inspection, not deleted), reported in one line naming the file, and treated as
missing: the job that makes it runs again, so a rerun ends identical to a clean run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from filelock import FileLock

DIGEST_SUFFIX = ".sha256"


def stable_hash(obj: Any, length: int = 20) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would have made: the user's umask, not mkstemp's 0600


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (fsync before the rename, and of the directory after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class DamagedObject(Exception):
    """A stored object failed its check; it has been quarantined and will be recomputed."""


Report = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Store:
    """Job outputs by kind and key, under one root directory, each verified by its digest."""

    def __init__(self, root: str | Path, report: Report = _stderr) -> None:
        self.root = Path(root)
        self.report = report
        self._verified: dict[Path, tuple[int, int]] = {}  # path -> (mtime_ns, size) last verified

    def path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / f"{key}.{ext}"

    @staticmethod
    def digest_path(path: Path) -> Path:
        return path.with_name(path.name + DIGEST_SUFFIX)

    # --------------------------------------------------------------------- integrity

    def _stamp(self, path: Path) -> tuple[int, int]:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size

    def _check(self, path: Path, data: bytes | None = None) -> str | None:
        """Why ``path`` cannot be trusted, or None when its bytes match its recorded digest."""
        digest_file = self.digest_path(path)
        try:
            expected = digest_file.read_text().strip()
        except FileNotFoundError:
            return "its digest is missing (a write cut short)"
        except OSError as exc:
            return f"its digest cannot be read ({exc.strerror or exc})"
        try:
            data = path.read_bytes() if data is None else data
        except OSError as exc:
            return f"it cannot be read ({exc.strerror or exc})"
        if hashlib.sha256(data).hexdigest() != expected:
            return "its bytes do not match the digest recorded when it was written"
        return None

    def quarantine(self, path: Path, reason: str) -> None:
        """Move ``path`` and its digest aside, and say so in one line."""
        self._verified.pop(path, None)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target_dir = self.root / "quarantine" / path.parent.name
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{path.name}.{stamp}"
        moved = False
        for source, dest in ((path, target), (self.digest_path(path), target.with_name(target.name + DIGEST_SUFFIX))):
            try:
                os.replace(source, dest)
                moved = moved or source == path
            except FileNotFoundError:
                pass
        where = f"moved to {target}" if moved else "removed"
        self.report(f"mibench: {path}: damaged, {reason}; {where}, recomputing it")

    def has(self, kind: str, key: str, ext: str) -> bool:
        """True when the object is there and matches its digest; a damaged one is quarantined (False)."""
        path = self.path(kind, key, ext)
        try:
            stamp = self._stamp(path)
        except FileNotFoundError:
            return False
        if self._verified.get(path) == stamp:
            return True
        problem = self._check(path)
        if problem is not None:
            self.quarantine(path, problem)
            return False
        self._verified[path] = stamp
        return True

    def _read(self, kind: str, key: str, ext: str) -> bytes:
        """The verified bytes of an object; DamagedObject (after quarantine) when they fail the check.

        An object :meth:`has` verified (or this store wrote) and unchanged since (same
        mtime and size) is not hashed again: ``has`` then ``load`` reads it once more, not twice.
        """
        path = self.path(kind, key, ext)
        try:
            stamp = self._stamp(path)
            data = path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            self.quarantine(path, f"it cannot be read ({exc.strerror or exc})")
            raise DamagedObject(f"{path}: cannot be read ({exc.strerror or exc}); quarantined") from None
        if self._verified.get(path) == stamp:
            return data
        problem = self._check(path, data)
        if problem is not None:
            self.quarantine(path, problem)
            raise DamagedObject(f"{path}: {problem}; quarantined, it will be recomputed")
        self._verified[path] = stamp
        return data

    def _parse(self, kind: str, key: str, ext: str, parse: Callable[[bytes], Any]) -> Any:
        data = self._read(kind, key, ext)
        try:
            return parse(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure means the object is unusable
            path = self.path(kind, key, ext)
            reason = f"it cannot be parsed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            self.quarantine(path, reason)
            raise DamagedObject(f"{path}: {reason}; quarantined, it will be recomputed") from None

    def _write(self, kind: str, key: str, ext: str, data: bytes) -> Path:
        # The digest first: a reader never sees a finished object without it, and a
        # digest whose object never arrived only means the object is missing.
        path = self.path(kind, key, ext)
        atomic_write(self.digest_path(path), (hashlib.sha256(data).hexdigest() + "\n").encode())
        atomic_write(path, data)
        self._verified[path] = self._stamp(path)
        return path

    # --------------------------------------------------------------------- locks

    def lock(self, key: str) -> FileLock:
        """An inter-process lock for one job: a second run on this directory waits for the job
        instead of doing it twice. It is an OS file lock (fcntl/flock), so it is released when
        its holder dies, even by kill -9: a dead holder never leaves a stale lock behind."""
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path), mode=FILE_MODE)

    # JSON: configs and small results
    def save_json(self, kind: str, key: str, obj: Any) -> Path:
        return self._write(kind, key, "json", json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def load_json(self, kind: str, key: str) -> Any:
        return self._parse(kind, key, "json", lambda data: json.loads(data.decode()))

    # torch: model weights and logits, read back with weights_only=True
    def save_torch(self, kind: str, key: str, obj: Any) -> Path:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return self._write(kind, key, "pt", buf.getvalue())

    def load_torch(self, kind: str, key: str, map_location: str | torch.device = "cpu") -> Any:
        return self._parse(kind, key, "pt",
                           lambda data: torch.load(io.BytesIO(data), map_location=map_location, weights_only=True))

    # numpy: index sets and attack scores
    def save_arrays(self, kind: str, key: str, **arrays: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return self._write(kind, key, "npz", buf.getvalue())

    def load_arrays(self, kind: str, key: str) -> dict[str, np.ndarray]:
        def parse(data: bytes) -> dict[str, np.ndarray]:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                return {k: arrays[k] for k in arrays.files}

        return self._parse(kind, key, "npz", parse)
