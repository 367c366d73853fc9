"""AdvReg: the reference set is carved out of the training split, and both players of the game learn."""

import numpy as np
import torch

from mibench_plugins.defenses.advreg import AdvReg, InferenceModel
from tests.conftest import digits_job


def test_both_players_learn_and_members_exclude_the_reference_set(fit_calls):
    job = digits_job(epochs=3)
    defense = AdvReg(AdvReg.Params(warmup_epochs=1, inference_steps=2))
    trained = defense.train(job)

    (call,) = fit_calls
    train = np.asarray(job.train_indices)
    members = np.asarray(trained.members)
    reference = np.setdiff1d(train, members)
    # members are exactly what the classifier trained on; the reference set is the rest
    np.testing.assert_array_equal(np.sort(call.indices), members)
    assert len(reference) == trained.info["reference_size"] == round(0.2 * len(train))
    assert np.intersect1d(members, reference).size == 0
    np.testing.assert_array_equal(np.union1d(members, reference), np.sort(train))

    # the classifier changed, every one of its tensors
    for name, after in call.model.state_dict().items():
        assert not torch.equal(after, call.model_before[name]), f"classifier {name} did not change"
    # the inference model changed, every layer of both branches and of the head
    inference = call.objective.inference
    linear = [m for m in inference.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 8
    before = {k.removeprefix("inference."): v for k, v in call.objective_before.items()}
    for name, after in inference.state_dict().items():
        assert not torch.equal(after, before[name]), f"inference model {name} did not change"
    assert 0 <= trained.info["inference_balanced_acc"] <= 1


def test_inference_model_sees_sorted_scores_and_the_label():
    torch.manual_seed(0)
    h = InferenceModel(num_classes=4)
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0]])
    label = torch.tensor([1])
    shuffled = logits[:, [3, 0, 2, 1]]
    # the score branch sees the sorted softmax: the order of the classes does not matter ...
    assert torch.allclose(h(logits, label), h(shuffled, label))
    # ... but the label does
    assert not torch.allclose(h(logits, label), h(logits, torch.tensor([0])))


def test_privacy_term_is_off_during_warm_up_and_log_or_linear_after(fit_calls):
    job = digits_job(epochs=1)
    AdvReg(AdvReg.Params(warmup_epochs=1, inference_steps=1)).train(job)
    objective = fit_calls[0].objective
    torch.manual_seed(1)
    logits, targets = torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, targets)
    h = torch.sigmoid(objective.inference(logits, targets))
    assert torch.allclose(objective(logits, None, targets, epoch=1), ce)
    assert torch.allclose(objective(logits, None, targets, epoch=2), ce + h.log().mean(), atol=1e-6)
    objective.params = AdvReg.Params(privacy_term="linear", alpha=2.0)
    assert torch.allclose(objective(logits, None, targets, epoch=5), ce + 2.0 * (h - 0.5).mean(), atol=1e-6)
