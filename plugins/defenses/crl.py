"""Center-based Relaxed Learning (CRL; UAI 2024) and the two ablations of its Table 2.

CRL = ImpRelaxLoss + lambda * RelaxedCenterLoss (Algorithm 1, eqs. 5-9), epochs
counted from 1 as in Algorithm 1:

- ImpRelaxLoss: logits normalised, g / (1 + tau_rce ||g||); L_lce = CE(g_norm, y).
  Even epochs |L_lce - alpha_rce|; odd epochs L_lce while above alpha_rce, else the
  soft CE of g_norm against t (t_y = p_y from the un-normalised logits, clamped at
  ``upper``; the rest (1 - p_y)/(C - 1)), on every sample, as the authors' code does.
- Relaxed center loss: features and class centers normalised with tau_rcl;
  L_ct = sum_j ||q_j - c_yj||^2 / 2B. Even epochs |L_ct - alpha_rcl|; odd epochs
  L_ct while above alpha_rcl, else sum_j [p_yj ||q_j - c_yj||^2 + (1 - p_yj) ||q_j||^2] / 2B
  (pull toward the center as confident, push toward the origin as unsure).
- Centers: one learnable vector per class (standard normal init), updated by
  their own SGD with ``center_lr`` from the gradient of the center loss alone
  (Algorithm 1 line 24: c <- c - tau_c * grad L_rcl; the lambda factor of the total
  loss is divided out). The authors' code instead steps lambda * grad with momentum
  0.9 and weight decay 5e-4; ``center_momentum`` gives the momentum.
- As in the authors' code, p_y is not detached.

Defaults. The paper publishes no values behind its tables (nor does the authors'
code). They come from a small sweep on Fashion-MNIST (`mibench run
benchmarks/fmnist-crl-sweep.yaml`: small-cnn, 1,500 members, 40 epochs, the
quickstart's training; test accuracy and loss-attack AUC of the target):

- tau_rce = 1 squeezes the logits to norm < 1, so L_lce cannot fall below about 1.6
  on 10 classes and alpha_rce must exceed that (alpha_rce 1.8: test 0.741, AUC 0.504).
  tau_rce = 0.1 keeps the usual loss scale, so alpha_rce reads like RelaxLoss' alpha.
- tau_rce = 0.1, alpha_rcl = 0.3: alpha_rce 0.2 -> test 0.842, AUC 0.540; 0.5 -> 0.831,
  0.526; 1.0 -> 0.782, 0.505. With alpha_rcl = 0.6: 0.3 -> 0.841, 0.534; 0.5 -> 0.833,
  0.527. For comparison CE: 0.841, 0.561; RelaxLoss alpha 0.2 / 0.5 / 1.0: 0.843 / 0.821 /
  0.742 test, 0.552 / 0.526 / 0.506 AUC. alpha_rce = 0.5 is the default: most of the
  leak gone for about 1 point of test accuracy, 1 point more than RelaxLoss keeps at
  the same AUC.
- The normalised center distance L_ct sits near 0.6 through training (tau_rcl = 1):
  alpha_rcl = 0.6 lets its relaxation engage (0.3 never does; the two differ little).
  lambda_ = 0.5; center_lr = 0.001 (the paper's).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from mibench.sdk import LossDefense, Objective, ObjectiveSpec, Params, hookimpl
from mibench_plugins.defenses.relax import (
    flattened_target,
    relaxed,
    scale_norm,
    soft_cross_entropy,
    true_class_prob,
)
import torch.nn.functional as F


def imp_relax_loss(logits, labels, epoch, alpha_rce, tau_rce, upper):
    """ImpRelaxLoss (eq. 9) of a batch."""
    g_norm = scale_norm(logits, tau_rce)
    lce = F.cross_entropy(g_norm, labels)

    def soft():
        target = flattened_target(true_class_prob(logits, labels, upper), labels, logits.shape[1])
        return soft_cross_entropy(g_norm, target)

    return relaxed(lce, alpha_rce, epoch, soft)


def relaxed_center_loss(logits, features, labels, centers, epoch, alpha_rcl, tau_rcl, upper):
    """The relaxed center loss (Algorithm 1, lines 7-18) of a batch."""
    q = scale_norm(features.flatten(1), tau_rcl)
    c = scale_norm(centers, tau_rcl)[labels]
    dist = (q - c).pow(2).sum(1)
    two_b = 2.0 * len(labels)
    l_ct = dist.sum() / two_b

    def push():
        p_y = true_class_prob(logits, labels, upper)
        return (p_y * dist + (1.0 - p_y) * q.pow(2).sum(1)).sum() / two_b

    return relaxed(l_ct, alpha_rcl, epoch, push)


class CRLParams(Params):
    alpha_rce: float = Field(0.5, gt=0, description="Threshold of ImpRelaxLoss (the privacy knob; paper Fig. 5).")
    alpha_rcl: float = Field(0.6, gt=0, description="Threshold of the relaxed center loss.")
    tau_rce: float = Field(0.1, ge=0, description="Logit normalisation g / (1 + tau_rce ||g||); 0 switches it off.")
    tau_rcl: float = Field(1.0, ge=0, description="Feature and center normalisation factor; 0 switches it off.")
    lambda_: float = Field(0.5, gt=0, description="Weight of the relaxed center loss.")
    center_lr: float = Field(0.001, gt=0, description="Learning rate of the class centers (paper: 0.001, constant).")
    center_momentum: float = Field(0.0, ge=0, lt=1, description="Momentum of the centers' SGD (authors' code: 0.9).")
    upper: float = Field(1.0, gt=0, le=1, description="Clamp of p_y in the soft target and the push branch.")


class CRLObjective(Objective):
    """ImpRelaxLoss + lambda * relaxed center loss, with the class centers as own parameters."""

    def __init__(self, params, spec: ObjectiveSpec, use_centers: bool = True) -> None:
        super().__init__()
        self.p = params
        self.use_centers = use_centers
        if use_centers:
            self.centers = nn.Parameter(torch.randn(spec.num_classes, spec.feature_dim))
            self.optimizer = torch.optim.SGD([self.centers], lr=params.center_lr, momentum=params.center_momentum)

    def forward(self, logits, features, targets, epoch):
        p = self.p
        loss = imp_relax_loss(logits, targets, epoch, p.alpha_rce, p.tau_rce, p.upper)
        if self.use_centers:
            loss = loss + p.lambda_ * relaxed_center_loss(
                logits, features, targets, self.centers, epoch, p.alpha_rcl, p.tau_rcl, p.upper
            )
        return loss

    def step(self) -> None:
        if not self.use_centers or self.centers.grad is None:
            return
        self.centers.grad.div_(self.p.lambda_)  # the centers follow grad L_rcl alone (Alg. 1, line 24)
        self.optimizer.step()


class CRL(LossDefense):
    """CRL: ImpRelaxLoss + lambda * relaxed center loss (normalised logits, features, centers)."""

    name = "crl"
    Params = CRLParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        return CRLObjective(self.params, spec)


class ImpRelaxLossParams(Params):
    alpha_rce: float = CRLParams.model_fields["alpha_rce"]
    tau_rce: float = CRLParams.model_fields["tau_rce"]
    upper: float = CRLParams.model_fields["upper"]


class ImpRelaxLoss(LossDefense):
    """CRL ablation: ImpRelaxLoss alone (relaxation + logit normalisation, no centers)."""

    name = "imp-relaxloss"
    Params = ImpRelaxLossParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        params = CRLParams(**self.params.model_dump())
        return CRLObjective(params, spec, use_centers=False)


class RelaxedCenterLossParams(Params):
    alpha_rce: float = CRLParams.model_fields["alpha_rce"]
    alpha_rcl: float = Field(1.0, gt=0, description="Threshold of the relaxed center loss (un-normalised distances).")
    lambda_: float = CRLParams.model_fields["lambda_"]
    center_lr: float = CRLParams.model_fields["center_lr"]
    center_momentum: float = CRLParams.model_fields["center_momentum"]
    upper: float = CRLParams.model_fields["upper"]


class RelaxedCenterLoss(LossDefense):
    """CRL ablation: relaxation + class centers, no normalisation (tau_rce = tau_rcl = 0)."""

    name = "relaxed-center-loss"
    Params = RelaxedCenterLossParams

    def objective(self, spec: ObjectiveSpec) -> Objective:
        params = CRLParams(**self.params.model_dump(), tau_rce=0.0, tau_rcl=0.0)
        return CRLObjective(params, spec)


@hookimpl
def register_defenses(register):
    register(CRL)
    register(ImpRelaxLoss)
    register(RelaxedCenterLoss)
