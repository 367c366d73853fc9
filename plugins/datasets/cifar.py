"""CIFAR-10 and CIFAR-100: 60,000 32x32 colour images each (train and test merged), via torchvision.

The files are torchvision's (the extracted python archives): ``cifar-10-batches-py/``
(``data_batch_1`` .. ``data_batch_5``, ``test_batch``) and ``cifar-100-python/``
(``train``, ``test``) under ``params.root``. torchvision's readers check each file's
md5 sum; that check runs when ``download: true`` (and fetches what fails it). Without
it, the files are read by torchvision's own classes with a presence check instead,
so a copy of the data anywhere (or the small files the tests write) loads as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field
from torchvision.datasets import CIFAR10 as TVCIFAR10
from torchvision.datasets import CIFAR100 as TVCIFAR100

from mibench.sdk import hookimpl
from mibench_plugins.datasets.torchvision_files import TorchvisionDataset, TorchvisionParams


class _PresenceCheck:
    """Replaces torchvision's md5 check of the batch files by a check that they exist."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _md5 in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        self.classes = []  # the class names (and their md5-checked meta file) are not needed


class _CIFAR10Files(_PresenceCheck, TVCIFAR10):
    pass


class _CIFAR100Files(_PresenceCheck, TVCIFAR100):
    pass


class _CIFAR(TorchvisionDataset):
    """Base of the two CIFARs: torchvision's reader, the train split first, then test."""

    checked: ClassVar[type[TVCIFAR10]]  # torchvision's class, with its md5 checks
    unchecked: ClassVar[type[TVCIFAR10]]  # the same reader with a presence check
    source = "https://www.cs.toronto.edu/~kriz/cifar.html (the python version, extracted)"

    def size(self) -> int:
        return 60000  # 50,000 train + 10,000 test

    def files(self) -> list[str]:
        names = self.unchecked.train_list + self.unchecked.test_list
        return [f"{self.unchecked.base_folder}/{name}" for name, _md5 in names]

    def fetch(self, root: Path) -> None:
        self.checked(str(root), train=True, download=True)  # one archive holds both splits

    def read(self, root: Path) -> tuple[np.ndarray, np.ndarray]:
        splits = [self.unchecked(str(root), train=train) for train in (True, False)]
        images = np.concatenate([s.data for s in splits]).transpose(0, 3, 1, 2)  # torchvision gives N x H x W x C
        return images, np.concatenate([np.asarray(s.targets) for s in splits])


class CIFAR10(_CIFAR):
    """CIFAR-10 (Krizhevsky 2009): 10 classes, 32x32 colour, 60k images."""

    name = "cifar10"
    Params = TorchvisionParams
    title = "CIFAR-10"
    num_classes = 10
    checked, unchecked = TVCIFAR10, _CIFAR10Files
    # The statistics the CRL authors' code normalises with (widespread values; the exact per-pixel
    # std of the training images is about (0.247, 0.243, 0.261), a difference of scale only).
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2023, 0.1994, 0.2010)


class CIFAR100Params(TorchvisionParams):
    augment: bool = Field(
        True, description="Random crop (4-pixel zero padding) and horizontal flip at training time (the paper's)."
    )


class CIFAR100(_CIFAR):
    """CIFAR-100 (Krizhevsky 2009): 100 fine classes, 32x32 colour, 60k images; augmented by default."""

    name = "cifar100"
    Params = CIFAR100Params
    title = "CIFAR-100"
    num_classes = 100
    checked, unchecked = TVCIFAR100, _CIFAR100Files
    # The CIFAR-100 statistics of the CRL authors' code.
    mean = (0.5070, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2761)


@hookimpl
def register_datasets(register):
    register(CIFAR10)
    register(CIFAR100)
