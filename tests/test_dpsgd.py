"""DP-SGD: Opacus trains the model, epsilon is reported, batch norm is refused or converted."""

import math
import sys

import numpy as np
import pytest
import torch

from mibench_plugins.architectures.small import SmallCNN
from mibench_plugins.defenses.dpsgd import DPSGD, PrivateTrainer
from tests.conftest import digits_job


@pytest.fixture
def batch_sizes(monkeypatch):
    """The number of rows of every batch the private trainer builds, in order."""
    sizes = []
    real_batch = PrivateTrainer.batch

    def record(self, x, targets, idx, augment=True):
        sizes.append(len(idx))
        return real_batch(self, x, targets, idx, augment)

    monkeypatch.setattr(PrivateTrainer, "batch", record)
    return sizes


def test_epsilon_grows_with_the_epochs_and_the_weights_load_into_a_plain_model(batch_sizes):
    sizes = batch_sizes
    epsilons = {}
    for epochs in (2, 4):
        job = digits_job(epochs=epochs)
        trained = DPSGD().train(job)
        epsilons[epochs] = trained.info["epsilon"]
        np.testing.assert_array_equal(trained.members, job.train_indices)
        assert trained.info["delta"] == 1e-5 and trained.info["noise_multiplier"] == 1.0
        # no Opacus wrapper left: the core rebuilds the architecture and loads the weights
        assert not any(k.startswith("_module") for k in trained.model.state_dict())
        job.build_model().load_state_dict(trained.model.state_dict())
    assert 0 < epsilons[2] < epsilons[4] < math.inf
    # Poisson sampling: the batch size varies around its expectation
    assert len(set(sizes)) > 1


def test_batch_norm_is_refused_with_a_hint_or_converted():
    cnn = SmallCNN(SmallCNN.Params(channels=[4], hidden=16, norm="batch"))
    with pytest.raises(ValueError, match=r"batch norm \(conv\.1\).*norm: group.*fix_batchnorm: true"):
        DPSGD().train(digits_job(cnn, epochs=1))

    defense = DPSGD(DPSGD.Params(fix_batchnorm=True))
    job = digits_job(cnn, epochs=1)
    trained = defense.train(job)
    assert trained.info["converted"] == "batchnorm->groupnorm"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trained.model.modules())
    # the grid's batch-norm network cannot take these weights; the defense's released architecture can
    with pytest.raises(RuntimeError):
        job.build_model().load_state_dict(trained.model.state_dict())
    defense.released_architecture(job.build_model()).load_state_dict(trained.model.state_dict())


def test_without_opacus_the_error_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "opacus" or m.startswith("opacus.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opacus", None)
    with pytest.raises(ImportError, match=r"pip install 'mibench\[dp\]'"):
        DPSGD().train(digits_job(epochs=1))


# ------------------------------------------------------------ DP-SGD tuned for accuracy (Aerni et al. 2024)


def _train(params, job=None, augment=None):
    """DP-SGD on the digits target split, from the same initial weights every time."""
    import dataclasses

    from mibench.sdk.trainer import Trainer

    job = job or digits_job(epochs=2)
    if augment is not None:
        pool = dataclasses.replace(job.pool, augment=augment)
        job = dataclasses.replace(job, pool=pool, trainer=Trainer(job.trainer.config, pool, job.device, job.seed))
    torch.manual_seed(0)
    return DPSGD(DPSGD.Params(**params)).train(job)


def _weights(trained):
    return torch.cat([t.flatten() for t in trained.model.state_dict().values()])


def test_no_noise_trains_and_reports_an_infinite_epsilon():
    trained = _train({"noise_multiplier": 0.0})
    assert trained.info["epsilon"] == math.inf and trained.info["noise_multiplier"] == 0.0
    assert torch.isfinite(_weights(trained)).all()


def test_physical_batches_accumulate_into_the_same_logical_step():
    whole = _train({"noise_multiplier": 0.5, "batch_size": 64})
    split = _train({"noise_multiplier": 0.5, "batch_size": 64, "max_physical_batch_size": 16})
    torch.testing.assert_close(_weights(split), _weights(whole), rtol=1e-4, atol=1e-5)
    other = _train({"noise_multiplier": 0.5, "batch_size": 128})  # the logical batch is a result: it changes them
    assert not torch.allclose(_weights(other), _weights(whole), atol=1e-3)


def test_augmentation_multiplicity_averages_each_samples_views_before_clipping(batch_sizes):
    def identity(x, generator):
        return x

    sizes = batch_sizes
    once = _train({"noise_multiplier": 0.5}, augment=identity)
    rows_once = sum(sizes)
    sizes.clear()
    four = _train({"noise_multiplier": 0.5, "augmentations": 4}, augment=identity)
    assert sum(sizes) == 4 * rows_once  # four views of every sample...
    # ...whose gradients, identical here, average to the one view's: the same clipped, noised step
    torch.testing.assert_close(_weights(four), _weights(once), rtol=1e-4, atol=1e-5)
    assert four.info["augmentations"] == 4
    with pytest.raises(ValueError, match="augmentations 4 needs a dataset with augmentation"):
        _train({"augmentations": 4})


def test_presets_set_what_is_not_given():
    high = DPSGD.Params(preset="high-utility")
    assert (high.noise_multiplier, high.batch_size, high.augmentations) == (0.00625, 64, 8)
    medium = DPSGD.Params(preset="medium-utility", noise_multiplier=0.5)
    assert (medium.noise_multiplier, medium.batch_size, medium.augmentations) == (0.5, 2048, 1)
    assert DPSGD.Params().noise_multiplier == 1.0 and DPSGD.Params().batch_size is None
