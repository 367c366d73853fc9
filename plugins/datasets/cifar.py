"""CIFAR-10 and CIFAR-100: 60,000 32x32 colour images each (train and test merged), via torchvision.

The files are torchvision's (the extracted python archives): ``cifar-10-batches-py/``
(``data_batch_1`` .. ``data_batch_5``, ``test_batch``) and ``cifar-100-python/``
(``train``, ``test``) under ``params.root``; ``download: true`` fetches them with
torchvision. They are pickles, and a pickle can run code, so before any is read each
file's md5 sum must be the official one (``verify: false`` skips that, with a warning,
for files of your own), and every file is read with a restricted unpickler that admits
only what the official files hold (:mod:`mibench_plugins.datasets.safe_pickle`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field
from torchvision.datasets import CIFAR10 as TVCIFAR10
from torchvision.datasets import CIFAR100 as TVCIFAR100

from mibench.sdk import hookimpl, location
from mibench_plugins.datasets.safe_pickle import load_batch, md5
from mibench_plugins.datasets.torchvision_files import TorchvisionDataset, TorchvisionParams


class CIFARParams(TorchvisionParams):
    verify: bool = location(True, "Check each file's md5 sum against the official one before reading it; false "
                                  "reads files of your own (still without running code), with a warning.")


class _CIFAR(TorchvisionDataset):
    """Base of the two CIFARs: the official batch files, train first, then test."""

    Params = CIFARParams
    checked: ClassVar[type[TVCIFAR10]]  # torchvision's class: its file list, md5 sums and download
    label_key: ClassVar[str]
    source = "https://www.cs.toronto.edu/~kriz/cifar.html (the python version, extracted)"

    def size(self) -> int:
        return 60000  # 50,000 train + 10,000 test

    def _listed(self) -> list[tuple[str, str]]:
        """(path under the root, official md5) of every batch file, train first."""
        return [(f"{self.checked.base_folder}/{name}", digest)
                for name, digest in self.checked.train_list + self.checked.test_list]

    def files(self) -> list[str]:
        return [name for name, _ in self._listed()]

    def fetch(self, root: Path) -> None:
        self.checked(str(root), train=True, download=True)  # one archive holds both splits

    def read(self, root: Path) -> tuple[np.ndarray, np.ndarray]:
        if self.params.verify:
            for name, digest in self._listed():
                if md5(root / name) != digest:
                    raise ValueError(f"{name} is not the official {self.title} file (its md5 sum differs); "
                                     "set verify: false to read your own files")
        else:
            warnings.warn(f"{self.title}: verify: false, the files under {root} are read without checking that "
                          "they are the official ones", UserWarning, stacklevel=2)
        batches = [load_batch(root / name) for name in self.files()]
        images = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
        return images, np.concatenate([np.asarray(b[self.label_key], dtype=np.int64) for b in batches])


class CIFAR10(_CIFAR):
    """CIFAR-10 (Krizhevsky 2009): 10 classes, 32x32 colour, 60k images."""

    name = "cifar10"
    title = "CIFAR-10"
    num_classes = 10
    checked, label_key = TVCIFAR10, "labels"
    # The statistics the CRL authors' code normalises with (widespread values; the exact per-pixel
    # std of the training images is about (0.247, 0.243, 0.261), a difference of scale only).
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2023, 0.1994, 0.2010)


class CIFAR100Params(CIFARParams):
    augment: bool = Field(
        True, description="Random crop (4-pixel zero padding) and horizontal flip at training time (the paper's)."
    )


class CIFAR100(_CIFAR):
    """CIFAR-100 (Krizhevsky 2009): 100 fine classes, 32x32 colour, 60k images; augmented by default."""

    name = "cifar100"
    Params = CIFAR100Params
    title = "CIFAR-100"
    num_classes = 100
    checked, label_key = TVCIFAR100, "fine_labels"
    # The CIFAR-100 statistics of the CRL authors' code.
    mean = (0.5070, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2761)


@hookimpl
def register_datasets(register):
    register(CIFAR10)
    register(CIFAR100)
