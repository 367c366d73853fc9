"""Dataset plugins: Fashion-MNIST from IDX files written here in the real format, and digits."""

import gzip
import struct

import numpy as np
import pytest

from mibench_plugins.datasets.fashion_mnist import DEBIAN_ROOT, FILES, FashionMNIST
from mibench_plugins.datasets.idx import read_idx
from mibench_plugins.datasets.digits import Digits


def write_idx(path, array, compress):
    codes = {np.uint8: 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def fake_fashion_mnist(folder, n_train=30, n_test=10, compress=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / FILES[key], array, compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files_from_root(tmp_path, compress):
    arrays = fake_fashion_mnist(tmp_path / "fm", compress=compress)
    ds = FashionMNIST(FashionMNIST.Params(root=tmp_path / "fm"))
    assert ds.missing_data() is None
    pool = ds.load_pool()
    assert pool.inputs.shape == (40, 1, 28, 28) and pool.input_shape == (1, 28, 28)
    # train first, then test: the official sets merged
    assert np.array_equal(pool.inputs[:30, 0].numpy(), arrays["train_images"])
    assert np.array_equal(pool.inputs[30:, 0].numpy(), arrays["test_images"])
    assert pool.labels.tolist() == list(range(10)) * 4
    assert pool.num_classes == 10 and pool.scale == 255.0


def test_fashion_mnist_finds_torchvision_layout(tmp_path):
    fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw", compress=False)
    assert len(FashionMNIST(FashionMNIST.Params(root=tmp_path)).load_pool()) == 40


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    ds = FashionMNIST(FashionMNIST.Params(root=tmp_path / "empty"))
    message = ds.missing_data()
    assert "not found in" in message and "apt-get install dataset-fashion-mnist" in message
    assert "download: true" in message
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        ds.load_pool()
    assert FashionMNIST(FashionMNIST.Params(root=tmp_path / "empty", download=True)).missing_data() is None


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 100) + b"\x00" * 10)
    with pytest.raises(ValueError, match="header says"):
        read_idx(path)


@pytest.mark.skipif(not DEBIAN_ROOT.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package():
    pool = FashionMNIST().load_pool()
    assert pool.inputs.shape == (70000, 1, 28, 28)
    assert np.bincount(pool.labels.numpy()).tolist() == [7000] * 10


def test_digits_pool():
    pool = Digits().load_pool()
    assert pool.inputs.shape == (1797, 1, 8, 8) and pool.scale == 16.0
    assert int(pool.inputs.max()) == 16 and pool.num_classes == 10
    unit = pool.inputs.float() / pool.scale
    assert float(unit.mean()) == pytest.approx(pool.mean[0], rel=1e-5)
