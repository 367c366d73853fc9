"""CIFAR-10, CIFAR-100 and SVHN from tiny files written here in the real on-disk formats.

CIFAR: Python 2 pickles (protocol 2, every string a Python 2 ``str``) of dicts with
the real keys, in cifar-10-batches-py/ and cifar-100-python/. SVHN: MATLAB v5 files
with ``X`` (32 x 32 x 3 x N, uint8) and ``y`` (N x 1, labels 1..10, 10 meaning 0).
"""

import pickle
import struct

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
import torchvision

from mibench_plugins.datasets.augment import random_crop_flip
from mibench_plugins.datasets.cifar import CIFAR10, CIFAR100
from mibench_plugins.datasets.svhn import SVHN


class Py2Pickler(pickle._Pickler):
    """Writes every str and bytes as a Python 2 ``str``, as the cPickle that wrote CIFAR did."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def write_batch(path, entry):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        Py2Pickler(fh, protocol=2).dump(entry)


def images(rng, n):
    """n images as CIFAR stores them: rows of 3072 bytes, all red, then green, then blue, row-major."""
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def fake_cifar10(root, sizes=(3, 2, 2, 2, 2), n_test=4):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    data, labels = [], []
    for name, n in zip(names, [*sizes, n_test]):
        x, y = images(rng, n), [int(v) for v in rng.integers(0, 10, n)]
        write_batch(root / "cifar-10-batches-py" / name,
                    {"batch_label": name, "labels": y, "data": x, "filenames": [f"{i}.png" for i in range(n)]})
        data.append(x)
        labels += y
    return np.concatenate(data), labels


def fake_cifar100(root, n_train=5, n_test=3):
    rng = np.random.default_rng(1)
    data, fine = [], []
    for name, n in (("train", n_train), ("test", n_test)):
        x, y = images(rng, n), [int(v) for v in rng.integers(0, 100, n)]
        coarse = [v // 5 for v in y]  # differs from the fine label: the pool must use fine_labels
        write_batch(root / "cifar-100-python" / name,
                    {"filenames": [f"{i}.png" for i in range(n)], "batch_label": name,
                     "fine_labels": y, "coarse_labels": coarse, "data": x})
        data.append(x)
        fine += y
    return np.concatenate(data), fine


def test_py2_pickles_have_the_real_keys(tmp_path):
    fake_cifar10(tmp_path)
    raw = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    assert set(pickle.loads(raw, encoding="bytes")) == {b"batch_label", b"labels", b"data", b"filenames"}


def test_cifar10_reads_the_pickled_batches(tmp_path):
    data, labels = fake_cifar10(tmp_path)
    ds = CIFAR10(CIFAR10.Params(root=tmp_path, verify=False))
    assert ds.missing_data() is None
    pool = ds.load_pool()
    assert pool.inputs.shape == (15, 3, 32, 32) and pool.inputs.dtype == torch.uint8
    assert pool.labels.dtype == torch.int64 and pool.num_classes == 10 and pool.scale == 255.0
    # data_batch_1..5, then test_batch; each row is R (1024), G, B planes of a 32x32 image
    assert np.array_equal(pool.inputs.reshape(15, -1).numpy(), data)
    assert pool.labels.tolist() == labels
    assert pool.inputs[0, 1, 2, 3] == data[0, 1024 + 2 * 32 + 3]
    assert pool.mean == (0.4914, 0.4822, 0.4465) and pool.std == (0.2023, 0.1994, 0.2010)
    assert pool.augment is None
    assert CIFAR10(CIFAR10.Params(root=tmp_path, augment=True, verify=False)).load_pool().augment is random_crop_flip


def test_cifar100_uses_fine_labels_and_augments_by_default(tmp_path):
    data, fine = fake_cifar100(tmp_path)
    pool = CIFAR100(CIFAR100.Params(root=tmp_path, verify=False)).load_pool()
    assert pool.inputs.shape == (8, 3, 32, 32) and pool.num_classes == 100
    assert np.array_equal(pool.inputs.reshape(8, -1).numpy(), data)  # train, then test
    assert pool.labels.tolist() == fine
    assert pool.mean == (0.5070, 0.4865, 0.4409) and pool.std == (0.2673, 0.2564, 0.2761)
    assert pool.augment is random_crop_flip
    assert CIFAR100(CIFAR100.Params(root=tmp_path, augment=False, verify=False)).load_pool().augment is None


def write_svhn(path, rng, n, labels=None):
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8) if labels is None else np.array(labels, np.uint8)[:, None]
    scipy.io.savemat(path, {"X": x, "y": y})
    return x, y[:, 0]


def test_svhn_reads_the_mat_files_and_maps_10_to_0(tmp_path):
    rng = np.random.default_rng(2)
    x_train, _ = write_svhn(tmp_path / "train_32x32.mat", rng, 4, labels=[10, 1, 9, 10])
    x_test, _ = write_svhn(tmp_path / "test_32x32.mat", rng, 3, labels=[2, 10, 5])
    ds = SVHN(SVHN.Params(root=tmp_path))
    assert ds.missing_data() is None
    pool = ds.load_pool()
    assert pool.inputs.shape == (7, 3, 32, 32) and pool.inputs.dtype == torch.uint8
    assert pool.labels.tolist() == [0, 1, 9, 0, 2, 0, 5] and pool.num_classes == 10
    # X is H x W x C x N; the pool is N x C x H x W, train first
    assert np.array_equal(pool.inputs[:4].numpy(), x_train.transpose(3, 2, 0, 1))
    assert np.array_equal(pool.inputs[4:].numpy(), x_test.transpose(3, 2, 0, 1))
    assert pool.augment is None and len(pool.mean) == 3


def test_svhn_extra_is_added_after_test(tmp_path):
    rng = np.random.default_rng(3)
    for name, n in (("train", 2), ("test", 2)):
        write_svhn(tmp_path / f"{name}_32x32.mat", rng, n)
    ds = SVHN(SVHN.Params(root=tmp_path, extra=True))
    assert "extra_32x32.mat" in ds.missing_data()
    x_extra, y_extra = write_svhn(tmp_path / "extra_32x32.mat", rng, 5)
    pool = ds.load_pool()
    assert len(pool) == 9
    assert np.array_equal(pool.inputs[4:].numpy(), x_extra.transpose(3, 2, 0, 1))
    assert pool.labels[4:].tolist() == [int(v) % 10 for v in y_extra]
    assert len(SVHN(SVHN.Params(root=tmp_path)).load_pool()) == 4


@pytest.mark.parametrize(
    "cls, expected",
    [
        (CIFAR10, "expected cifar-10-batches-py/ (data_batch_1, data_batch_2, data_batch_3, data_batch_4, "
                  "data_batch_5, test_batch); "),
        (CIFAR100, "expected cifar-100-python/ (train, test); "),
        (SVHN, "expected train_32x32.mat, test_32x32.mat; "),
    ],
)
def test_missing_files_say_where_and_how(tmp_path, cls, expected):
    ds = cls(cls.Params(root=tmp_path / "empty"))
    message = ds.missing_data()
    assert f"not found under {tmp_path / 'empty'}" in message and expected in message
    assert "download: true" in message and "http" in message
    with pytest.raises(FileNotFoundError, match="download: true"):
        ds.load_pool()
    assert cls(cls.Params(root=tmp_path / "empty", download=True)).missing_data() is None


def test_one_missing_cifar_batch_is_named(tmp_path):
    fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    message = CIFAR10(CIFAR10.Params(root=tmp_path, verify=False)).missing_data()
    assert "test_batch); missing cifar-10-batches-py/ (data_batch_3); set download" in message


def test_a_broken_file_is_reported_with_its_root(tmp_path):
    fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"CIFAR-10: cannot read the files under {tmp_path}"):
        CIFAR10(CIFAR10.Params(root=tmp_path, verify=False)).load_pool()


def test_data_location_stays_out_of_the_model_hash(registry, tmp_path):
    from mibench.config.plugin_config import PluginConfig

    for name in ("cifar10", "cifar100", "svhn"):
        info = registry.get("dataset", name)
        here = PluginConfig(info, info.cls.Params(root=tmp_path))
        there = PluginConfig(info, info.cls.Params(root=tmp_path / "elsewhere", download=True))
        assert here == there and here.label == name
        flipped = PluginConfig(info, info.cls.Params(augment=not here.params.augment))
        assert flipped != here and "augment=" in flipped.label


def test_download_goes_through_torchvision_with_its_checksums(tmp_path, monkeypatch):
    calls = []

    def fake_download_url(url, root, filename, md5):
        calls.append((url, filename, md5))
        write_svhn(tmp_path / filename, np.random.default_rng(4), 2)

    monkeypatch.setattr("mibench_plugins.datasets.svhn.download_url", fake_download_url)
    pool = SVHN(SVHN.Params(root=tmp_path, download=True)).load_pool()
    assert len(pool) == 4
    assert [c[1] for c in calls] == ["train_32x32.mat", "test_32x32.mat"]
    assert calls[0] == tuple(torchvision.datasets.SVHN.split_list["train"])

    class FakeTorchvisionCIFAR10:  # stands in for torchvision's md5-checking class
        base_folder = torchvision.datasets.CIFAR10.base_folder
        train_list, test_list = torchvision.datasets.CIFAR10.train_list, torchvision.datasets.CIFAR10.test_list

        def __init__(self, root, train, download):
            assert (root, train, download) == (str(tmp_path / "c"), True, True)
            fake_cifar10(tmp_path / "c")

    monkeypatch.setattr(CIFAR10, "checked", FakeTorchvisionCIFAR10)
    assert len(CIFAR10(CIFAR10.Params(root=tmp_path / "c", download=True, verify=False)).load_pool()) == 15


def test_a_grid_runs_on_cifar_files_with_augmentation(tmp_path, registry, write_grid):
    from mibench.config.resolve import load_grid
    from mibench.runner import Runner

    fake_cifar10(tmp_path / "data", sizes=(12,) * 5, n_test=20)
    grid = write_grid(f"""
        name: cifar-files
        device: cpu
        datasets: [{{name: cifar10, params: {{root: "{tmp_path / 'data'}", augment: true, verify: false}}}}]
        architectures: [small-cnn]
        defenses: [ce]
        attacks: [loss]
        training: {{epochs: 2, batch_size: 16}}
        shadow: {{count: 1}}
        """)
    summary = Runner(load_grid(grid, registry), registry, tmp_path / "run", log=lambda _: None).run()
    assert summary.ok
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert results.loc[0, "dataset"] == "cifar10(augment=true)" and results.loc[0, "n_members"] == 20


class _Payload:
    """What a hostile batch file would run on load: create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path):
    fake_cifar10(tmp_path)
    created = tmp_path / "pwned"
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "wb") as fh:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Payload(created)}, fh, protocol=2)
    with pytest.raises(ValueError, match=r"refused to load (builtins|io)\.open: a CIFAR batch holds arrays"):
        CIFAR10(CIFAR10.Params(root=tmp_path, verify=False)).load_pool()
    assert not created.exists()


def test_files_that_are_not_the_official_ones_are_refused_unless_verify_is_off(tmp_path):
    fake_cifar10(tmp_path)
    with pytest.raises(ValueError, match="cifar-10-batches-py/data_batch_1 is not the official CIFAR-10 file .* "
                                         "set verify: false"):
        CIFAR10(CIFAR10.Params(root=tmp_path)).load_pool()
    with pytest.warns(UserWarning, match="verify: false, the files under .* are read without checking"):
        assert len(CIFAR10(CIFAR10.Params(root=tmp_path, verify=False)).load_pool()) == 15
