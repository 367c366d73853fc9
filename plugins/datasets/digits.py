"""scikit-learn's 8x8 handwritten digits: 1,797 images, bundled with scikit-learn (no download)."""

from __future__ import annotations

import numpy as np
import torch

from mibench.sdk import Dataset, DatasetParams, DataShape, Pool, hookimpl


class Digits(Dataset):
    """scikit-learn digits (UCI optdigits test set): 10 classes, 8x8 grey, 1,797 images."""

    name = "digits"
    Params = DatasetParams

    def shape(self) -> DataShape:
        return DataShape((1, 8, 8), 10, 1797)

    def load_pool(self) -> Pool:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = bunch.images.astype(np.uint8)[:, None]  # values 0..16
        unit = images / 16.0
        return Pool(
            inputs=torch.from_numpy(images),
            labels=torch.from_numpy(bunch.target.astype(np.int64)),
            num_classes=10,
            mean=(float(unit.mean()),),
            std=(float(unit.std()),),
            scale=16.0,
        )


@hookimpl
def register_datasets(register):
    register(Digits)
