"""White-box attacks on the norm of a per-sample loss gradient (REFERENCE §4): Grad-x, Grad-w.

Grad-x (Rezaei & Liu 2021) takes the gradient with respect to the input the model
receives (normalised). The anchors compute it one sample at a time, which is why the
CRL paper reports it as too costly for DenseNet121. With the model in eval mode,
sample i's loss depends on its own input only, so the gradient of the *summed* loss
with respect to a batch of inputs holds every per-sample input gradient: one backward
pass per batch gives the same numbers as the loop (tests/test_gradient_attacks.py
checks it, benchmarks/gradx.py times it).

Grad-w takes the gradient with respect to every trainable weight, which does not
split that way; per-sample weight gradients come from torch.func, ``vmap`` over
``grad`` of a functional call of the model, a chunk of samples at a time (``chunk_size``
x the parameter count floats are held at once). Buffers (batch-norm running
statistics) are passed along but not differentiated.

Both score -norm (a member's loss is flatter) and calibrate per-class thresholds on the
shadow models like the other threshold attacks (the CRL code's choice; RelaxLoss's code
uses one global threshold for gradient attacks: ``thresholds: global``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from mibench.sdk import Params, ThresholdAttack, ThresholdParams, hookimpl, map_batches, tuning


def _require_eval(model: nn.Module) -> None:
    if model.training:
        raise ValueError("per-sample gradients need the model in eval mode (batch statistics mix samples)")


def input_gradient_norms(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``||d CE(f(x_i), y_i) / d x_i||_2`` for every row of ``inputs``, with one backward pass."""
    _require_eval(model)
    x = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        logits, _ = model(x)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        (grad_x,) = torch.autograd.grad(loss, x)
    return grad_x.flatten(1).norm(dim=1)


def weight_gradient_norms(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``||d CE(f(x_i), y_i) / d w||_2`` over all trainable weights, for every row of ``inputs``."""
    _require_eval(model)
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    fixed = {k: v.detach() for k, v in model.named_parameters() if not v.requires_grad}
    fixed.update({k: v.detach() for k, v in model.named_buffers()})

    def loss(p, x, y):
        logits, _ = functional_call(model, (p, fixed), (x.unsqueeze(0),))
        return F.cross_entropy(logits.float(), y.unsqueeze(0))

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, inputs, labels)
    return torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))


class GradientNormAttack(ThresholdAttack):
    """Base: score = -(a per-sample gradient norm), computed in batches on the white-box model."""

    needs_white_box = True
    query_cost = 3.0  # a forward and a backward pass per sample

    def norms(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def batch_size(self) -> int:
        raise NotImplementedError

    def model_signal(self, model, indices) -> np.ndarray:
        module = model.module()
        return -map_batches(lambda x, y: self.norms(module, x, y), model.pool, indices, model.device,
                            self.batch_size(), desc=self.name)


class GradXParams(ThresholdParams):
    batch_size: int = tuning(256, "Samples per forward and backward pass (speed and memory only).", ge=1, le=65536)


class GradXAttack(GradientNormAttack):
    """Grad-x l2 (Rezaei & Liu 2021): score = -||d CE / d x||_2 (white box), one backward per batch."""

    name = "gradx-l2"
    Params: ClassVar[type[Params]] = GradXParams

    def norms(self, model, inputs, labels):
        return input_gradient_norms(model, inputs, labels)

    def batch_size(self):
        return self.params.batch_size


class GradWParams(ThresholdParams):
    chunk_size: int = tuning(
        32, "Samples whose per-sample gradients are held at once (memory: chunk x params; speed only).", ge=1, le=65536
    )


class GradWAttack(GradientNormAttack):
    """Grad-w l2: score = -||d CE / d w||_2 per sample (white box), torch.func vmap over grad."""

    name = "gradw-l2"
    Params: ClassVar[type[Params]] = GradWParams

    def norms(self, model, inputs, labels):
        return weight_gradient_norms(model, inputs, labels)

    def batch_size(self):
        return self.params.chunk_size


@hookimpl
def register_attacks(register):
    register(GradXAttack)
    register(GradWAttack)
