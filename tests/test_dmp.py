"""DMP: the released student learns only from low-entropy reference samples, never from the private part."""

import numpy as np
import pytest
import torch

from mibench.training import predict_logits
from mibench_plugins.defenses.dmp import DMP, SoftLabelKL, entropy
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
    assert len(student.indices) == trained.info["distilled"] == round(0.5 * len(reference))
    # one soft label (log-probabilities) per student sample
    assert student.targets.shape == (len(student.indices), job.num_classes)
    assert torch.allclose(student.targets.exp().sum(1), torch.ones(len(student.indices)))

    # the kept samples are the reference samples the teacher is most certain about
    h = entropy(predict_logits(teacher.model, job.pool, reference, job.device)).numpy()
    kept = np.isin(reference, student.indices)
    assert h[kept].max() <= h[~kept].min()
    assert h[kept].max() == pytest.approx(trained.info["max_kept_entropy"], abs=1e-4)


def test_soft_label_kl_is_zero_at_the_teacher_and_keeps_its_scale_across_temperatures():
    torch.manual_seed(0)
    teacher, student = torch.randn(16, 10) * 3, torch.randn(16, 10) * 3
    for tau in (1.0, 4.0):
        kl = SoftLabelKL(tau)
        targets = torch.log_softmax(teacher / tau, dim=1)
        assert kl(teacher, None, targets, 1).abs() < 1e-5
        assert kl(student, None, targets, 1) > 0
    # tau^2 keeps the gradient of a large-temperature loss at the scale of a small-temperature one
    grads = []
    for tau in (4.0, 8.0):
        s = student.clone().requires_grad_()
        SoftLabelKL(tau)(s, None, torch.log_softmax(teacher / tau, dim=1), 1).backward()
        grads.append(s.grad.norm())
    assert 0.5 < grads[1] / grads[0] < 2.0
