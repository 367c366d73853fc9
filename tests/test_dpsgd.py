"""DP-SGD: Opacus trains the model, epsilon is reported, batch norm is refused or converted."""

import math
import sys

import numpy as np
import pytest
import torch

from mibench_plugins.architectures.small import SmallCNN
from mibench_plugins.defenses.dpsgd import DPSGD, PrivateTrainer
from tests.conftest import digits_job


def test_epsilon_grows_with_the_epochs_and_the_weights_load_into_a_plain_model(monkeypatch):
    sizes = []
    real_batch = PrivateTrainer.batch

    def record(self, x, targets, idx, augment=True):
        sizes.append(len(idx))
        return real_batch(self, x, targets, idx, augment)

    monkeypatch.setattr(PrivateTrainer, "batch", record)
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
