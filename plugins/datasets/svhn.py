"""SVHN (cropped digits): 99,289 32x32 colour images of house numbers (train and test merged), via torchvision.

The files are the official ``train_32x32.mat`` and ``test_32x32.mat`` (and, with
``extra: true``, ``extra_32x32.mat``) directly under ``params.root``, as torchvision
keeps them. Labels are 0..9 (the files' label 10 means the digit 0; torchvision maps it).
torchvision's md5 check runs when ``download: true``; otherwise a presence check replaces it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field
from torchvision.datasets import SVHN as TVSVHN
from torchvision.datasets.utils import download_url

from mibench.sdk import hookimpl
from mibench_plugins.datasets.torchvision_files import TorchvisionDataset, TorchvisionParams


SPLIT_SIZES = {"train": 73257, "test": 26032, "extra": 531131}


class _SVHNFile(TVSVHN):
    """torchvision's SVHN reader with a presence check instead of its md5 check."""

    def _check_integrity(self) -> bool:
        return (Path(self.root) / self.filename).is_file()


class Params(TorchvisionParams):
    extra: bool = Field(False, description="Add the 531,131 'extra' training images to the pool (after test).")


class SVHN(TorchvisionDataset):
    """SVHN (Netzer et al. 2011): 10 digit classes, 32x32 colour, 99k images (630k with extra)."""

    name = "svhn"
    Params = Params
    title = "SVHN"
    num_classes = 10
    source = "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)"
    # Per-channel statistics of the SVHN train split (the values in common use). The CRL
    # authors' code does not normalise SVHN at all; normalising only rescales the inputs.
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)

    def splits(self) -> list[str]:
        return ["train", "test", "extra"] if self.params.extra else ["train", "test"]

    def size(self) -> int:
        return sum(SPLIT_SIZES[split] for split in self.splits())

    def files(self) -> list[str]:
        return [TVSVHN.split_list[split][1] for split in self.splits()]

    def fetch(self, root: Path) -> None:
        for split in self.splits():
            url, filename, md5 = TVSVHN.split_list[split]
            download_url(url, str(root), filename, md5)  # skips a file whose md5 is right

    def read(self, root: Path) -> tuple[np.ndarray, np.ndarray]:
        parts = [_SVHNFile(str(root), split=split) for split in self.splits()]  # each N x C x H x W
        return np.concatenate([p.data for p in parts]), np.concatenate([p.labels for p in parts])


@hookimpl
def register_datasets(register):
    register(SVHN)
