"""Fashion-MNIST: 70,000 28x28 grey images of 10 clothing classes (train and test merged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mibench.sdk import Dataset, DatasetParams, DataShape, Pool, hookimpl, location
from mibench_plugins.datasets.idx import read_idx

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), "
    "set params.root to a folder with the four IDX files, or set params.download: true"
)


class Params(DatasetParams):
    root: Path | None = location(None, f"Folder with the four IDX files (plain or .gz); default {DEBIAN_ROOT}.")
    download: bool = location(False, "Download with torchvision when the files are missing.")
    download_root: Path = location(Path("~/.cache/mibench/fashion-mnist"), "Where a download goes.")


def _find(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (or torchvision's FashionMNIST/raw below it), if all are there."""
    for base in (folder, folder / "FashionMNIST" / "raw"):
        found = {}
        for key, stem in FILES.items():
            for candidate in (base / stem, base / f"{stem}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FILES):
            return found
    return None


class FashionMNIST(Dataset):
    """Fashion-MNIST (Xiao et al. 2017): 10 classes, 28x28 grey, 70k images."""

    name = "fashion-mnist"
    Params = Params

    def _folders(self) -> list[Path]:
        if self.params.root is not None:
            return [self.params.root.expanduser()]
        return [DEBIAN_ROOT, self.params.download_root.expanduser()]

    def _files(self) -> dict[str, Path] | None:
        for folder in self._folders():
            files = _find(folder)
            if files:
                return files
        return None

    def shape(self) -> DataShape:
        return DataShape((1, 28, 28), 10, 70000)

    def missing_data(self) -> str | None:
        if self._files() is not None or self.params.download:
            return None
        where = " or ".join(str(f) for f in self._folders())
        return f"Fashion-MNIST files not found in {where}; {HOW_TO_GET}"

    def load_pool(self) -> Pool:
        files = self._files()
        if files is None and self.params.download:
            from torchvision.datasets import FashionMNIST as TVFashionMNIST

            root = (self.params.root or self.params.download_root).expanduser()
            for train in (True, False):
                TVFashionMNIST(str(root), train=train, download=True)
            files = _find(root)
        if files is None:
            raise FileNotFoundError(self.missing_data())
        images = np.concatenate([read_idx(files["train_images"]), read_idx(files["test_images"])])
        labels = np.concatenate([read_idx(files["train_labels"]), read_idx(files["test_labels"])])
        return Pool(
            inputs=torch.from_numpy(images.copy()).unsqueeze(1),
            labels=torch.from_numpy(labels.astype(np.int64)),
            num_classes=10,
            mean=(0.2860,),
            std=(0.3530,),
        )


@hookimpl
def register_datasets(register):
    register(FashionMNIST)
