"""Common base of the datasets read with torchvision from its on-disk layout under ``params.root``.

A subclass names the files it needs (relative to the root), how torchvision fetches
them, and how to read them; this base checks that they are there, says how to get
them when they are not, and builds the pool (official train then test, merged).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from mibench.sdk import Dataset, DatasetParams, DataShape, Pool, location
from mibench_plugins.datasets.augment import random_crop_flip

DEFAULT_ROOT = Path("~/.cache/mibench/data")


class TorchvisionParams(DatasetParams):
    root: Path = location(DEFAULT_ROOT, "Folder holding the files in torchvision's layout.")
    download: bool = location(False, "Download the files with torchvision when they are missing (needs internet).")
    augment: bool = Field(False, description="Random crop (4-pixel zero padding) and horizontal flip at training time.")


class TorchvisionDataset(Dataset):
    """Base: a 32x32 colour dataset stored in torchvision's layout (not registered itself)."""

    Params = TorchvisionParams
    title: ClassVar[str]
    num_classes: ClassVar[int]
    mean: ClassVar[tuple[float, float, float]]
    std: ClassVar[tuple[float, float, float]]
    source: ClassVar[str]  # where to get the files by hand

    def size(self) -> int:
        """Number of images in the pool (known without reading the files)."""
        raise NotImplementedError

    def shape(self) -> DataShape:
        return DataShape((3, 32, 32), self.num_classes, self.size())

    def files(self) -> list[str]:
        """The files the pool needs, relative to the root."""
        raise NotImplementedError

    def fetch(self, root: Path) -> None:
        """Download into ``root`` with torchvision what is missing or fails its md5 check."""
        raise NotImplementedError

    def read(self, root: Path) -> tuple[np.ndarray, np.ndarray]:
        """Images (N x 3 x 32 x 32 uint8) and labels of the pool: train first, then test."""
        raise NotImplementedError

    @property
    def root(self) -> Path:
        return self.params.root.expanduser()

    def _missing_files(self) -> list[str]:
        return [name for name in self.files() if not (self.root / name).is_file()]

    def missing_data(self) -> str | None:
        missing = self._missing_files()
        if not missing or self.params.download:
            return None
        expected = _listing(self.files())
        if len(missing) < len(self.files()):
            expected += f"; missing {_listing(missing)}"
        return (
            f"{self.title} files not found under {self.root}: expected {expected}; set download: true "
            f"on a machine with internet, or get them from {self.source} and put them under {self.root} (params.root)"
        )

    def load_pool(self) -> Pool:
        if self.params.download:
            self.fetch(self.root)  # torchvision checks the md5 sums and downloads what is missing or wrong
        if self._missing_files():
            raise FileNotFoundError(self.missing_data())
        try:
            images, labels = self.read(self.root)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
            raise ValueError(f"{self.title}: cannot read the files under {self.root}: {exc!r}") from exc
        return Pool(
            inputs=torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
            labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
            augment=random_crop_flip if self.params.augment else None,
        )


def _listing(files: list[str]) -> str:
    """``a/ (x, y), z``: relative file names, grouped by folder."""
    folders: dict[str, list[str]] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    return ", ".join(f"{folder}/ ({', '.join(names)})" if folder else ", ".join(names) for folder, names in folders.items())
