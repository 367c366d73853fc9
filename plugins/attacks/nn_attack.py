"""The NN-based attack (Shokri et al. 2017; Nasr et al. 2018), as in the CRL paper.

Every shadow model is queried on its own members (label 1) and non-members (label 0);
one attack MLP learns member-ness from (softmax vector, one-hot label), and is then
applied to the target's evaluation samples. The layout follows the CRL code's attack
network (REFERENCE §4; the CRL authors' attack model): hidden widths [128, 64], ReLU, dropout, batch 256.
Its layers sit in an ``nn.Sequential``, so every one of them is registered and trains
(the RelaxLoss code kept its hidden layers in a plain list, so only the last one
learned; tests/test_nn_attack.py checks that each layer's weights move).

Differences from the CRL code, on purpose: one output logit with a binary
cross-entropy loss (their two-class softmax is the same model family), Adam with a
constant learning rate instead of their SGD schedule, and fewer epochs by default.
The score is the attack network's log-odds of "member": the same ranking as the
member probability without its saturation at 1.0, and the decision threshold is
log-odds 0 (probability 0.5).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mibench.sdk import Attack, AttackContext, AttackOutput, Params, calibration_samples, hookimpl, progress_bar


class NNParams(Params):
    hidden: list[int] = Field([128, 64], min_length=1, max_length=8, description="Widths of the hidden layers.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout after each hidden layer (CRL's code: 0.2).")
    epochs: int = Field(50, ge=1, le=10000, description="Training epochs of the attack network.")
    batch_size: int = Field(256, ge=1, le=65536, description="Batch size of the attack network.")
    lr: float = Field(1e-3, gt=0, le=10, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Adam weight decay.")


def attack_features(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The attack network's input: [softmax(logits) (unsorted), one-hot(label)], 2C float32 columns."""
    probs = logits.double().softmax(1).float()
    return torch.cat([probs, F.one_hot(labels.long(), num_classes).float()], dim=1)


def attack_network(in_features: int, hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def train_attack_network(
    net: nn.Module, features: torch.Tensor, membership: torch.Tensor, params: NNParams, seed: int
) -> nn.Module:
    """Fit ``net`` (on the features' device) to predict ``membership`` with binary cross-entropy."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    targets = membership.float().to(features.device)
    n_batches = -(-len(features) // params.batch_size)
    net.train()
    with progress_bar(total=params.epochs * n_batches, desc="nn attack", unit="batch") as bar:
        for _ in range(params.epochs):
            perm = torch.randperm(len(features), generator=generator).to(features.device)
            for start in range(0, len(features), params.batch_size):
                idx = perm[start : start + params.batch_size]
                loss = F.binary_cross_entropy_with_logits(net(features[idx]).squeeze(1), targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(1)
    return net.eval()


@torch.no_grad()
def member_log_odds(net: nn.Module, features: torch.Tensor) -> np.ndarray:
    return net.eval()(features).squeeze(1).double().cpu().numpy()


class NNAttack(Attack):
    """NN-based attack: an MLP on (softmax, one-hot label) trained on the shadows' members and non-members."""

    name = "nn"
    Params = NNParams
    fits_on_reference_samples = True

    def features(self, model, indices: np.ndarray, num_classes: int, device: torch.device) -> torch.Tensor:
        return attack_features(model.logits(indices), model.labels(indices), num_classes).to(device)

    def run(self, ctx: AttackContext) -> AttackOutput:
        if not ctx.references:
            raise ValueError("the NN attack needs reference models to learn from")
        c = ctx.pool.num_classes
        samples = calibration_samples(ctx.references)
        x = torch.cat([self.features(s.model, s.indices, c, ctx.device) for s in samples])
        m = torch.as_tensor(np.concatenate([s.member for s in samples]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            net = attack_network(2 * c, list(self.params.hidden), self.params.dropout).to(ctx.device)
        train_attack_network(net, x, m, self.params, ctx.seed)
        train_acc = float(((member_log_odds(net, x) >= 0) == m.numpy()).mean())
        scores = member_log_odds(net, self.features(ctx.target, ctx.eval_indices, c, ctx.device))
        return AttackOutput(scores, 0.0, "global", {"attack_train_acc": round(train_acc, 4)})


@hookimpl
def register_attacks(register):
    register(NNAttack)
