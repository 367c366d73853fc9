"""DMP: the released student learns only from low-entropy reference samples, never from the private part."""

import numpy as np
import pytest
import torch

from mibench.sdk.trainer import predict_logits
from mibench.sdk.outputs import softmax_entropy as entropy
from mibench_plugins.defenses.dmp import DMP, SoftLabelKL, lowest_entropy_per_class
from tests.conftest import digits_job


def test_student_never_trains_on_a_private_sample(fit_calls):
    job = digits_job(epochs=2)
    trained = DMP(DMP.Params(reference_fraction=0.3, keep_fraction=0.5, tau=2.0)).train(job)

    teacher, student = fit_calls
    train = np.asarray(job.train_indices)
    private = np.asarray(trained.members)
    reference = np.setdiff1d(train, private)
    assert len(reference) == trained.info["reference_size"] == round(0.3 * len(train))
    # the teacher trains on the private part, which is what is evaluated as members
    np.testing.assert_array_equal(np.sort(teacher.indices), private)
    # the released model is the student, trained on reference samples only
    assert student.model is trained.model and teacher.model is not trained.model
    assert np.intersect1d(student.indices, private).size == 0
    assert np.isin(student.indices, reference).all()
    assert len(student.indices) == trained.info["distilled"]
    assert abs(len(student.indices) - 0.5 * len(reference)) <= job.num_classes  # half of each class, rounded
    # one soft label (log-probabilities) per student sample
    assert student.targets.shape == (len(student.indices), job.num_classes)
    assert torch.allclose(student.targets.exp().sum(1), torch.ones(len(student.indices)))

    # within each class the teacher predicts, the kept samples are those it is most certain about
    logits = predict_logits(teacher.model, job.pool, reference, job.device)
    h, predicted = entropy(logits).numpy(), logits.argmax(1).numpy()
    kept = np.isin(reference, student.indices)
    for c in np.unique(predicted):
        in_c = predicted == c
        assert kept[in_c].any()
        if (~kept & in_c).any():
            assert h[kept & in_c].max() <= h[~kept & in_c].min()
    assert h[kept].max() == pytest.approx(trained.info["max_kept_entropy"], abs=1e-4)


def test_entropy_filter_keeps_the_most_certain_share_of_each_class():
    uncertainty = np.array([0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.05])
    predicted = np.array([0, 0, 0, 0, 1, 1, 2])
    # class 0: entropies .9 .1 .5 .3 -> keep 2: positions 1 (.1), 3 (.3); class 1: .2 .8 -> keep 1: 4;
    # class 2: a single sample is kept
    assert lowest_entropy_per_class(uncertainty, predicted, 0.5).tolist() == [1, 3, 4, 6]
    assert lowest_entropy_per_class(uncertainty, predicted, 1.0).tolist() == list(range(7))


def test_soft_label_kl_is_zero_at_the_teacher_and_keeps_its_scale_across_temperatures():
    torch.manual_seed(0)
    teacher, student = torch.randn(16, 10) * 3, torch.randn(16, 10) * 3
    for tau in (1.0, 4.0):
        kl = SoftLabelKL(tau)
        targets = torch.log_softmax(teacher / tau, dim=1)
        assert kl(teacher, None, targets, 1).abs() < 1e-5
        assert kl(student, None, targets, 1) > 0
    # with tau_squared the loss is tau^2 times the plain KL, which keeps the gradient of a
    # large-temperature loss at the scale of a small-temperature one
    targets = torch.log_softmax(teacher / 4.0, dim=1)
    assert SoftLabelKL(4.0, tau_squared=True)(student, None, targets, 1) == pytest.approx(
        16 * SoftLabelKL(4.0)(student, None, targets, 1).item(), rel=1e-6)
    grads = []
    for tau in (4.0, 8.0):
        s = student.clone().requires_grad_()
        SoftLabelKL(tau, tau_squared=True)(s, None, torch.log_softmax(teacher / tau, dim=1), 1).backward()
        grads.append(s.grad.norm())
    assert 0.5 < grads[1] / grads[0] < 2.0
