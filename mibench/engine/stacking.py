"""Training K models at once on one device (``training.stack``): stacked weights, one vmapped loop.

A small network leaves a GPU mostly idle, so the models of a pool (or the shadows of a
cell) that share an architecture, a defense config and a training config are trained
together: their weights are stacked along a new first dimension
(:func:`torch.func.stack_module_state`) and one ``vmap`` over
:func:`torch.func.functional_call` runs the K forward passes as one. Everything that
makes a model itself stays its own: its seed fixes its initial weights (built exactly as
:meth:`~mibench.sdk.LossDefense.prepare` builds them alone), its trainer's generator
its batch order and augmentation, its objective (CRL's centers too) its loss. The
optimiser works on the stacked tensors; SGD, Adam and AdamW are elementwise, so each
model's slice follows its own optimiser state exactly. The loss of the stack is the sum
of the K losses, whose gradient in model k's weights is model k's own gradient. Final
weights therefore equal one-at-a-time training up to float reassociation in the
batched kernels (the suite checks this on the CPU).

What cannot stack falls back to one model at a time, with the reason in the log
(:func:`run_refusal`): a defense that drives its own training (it overrides
:meth:`~mibench.sdk.Defense.train`: AdvReg, DMP, DP-SGD, early stopping), and a network
with dropout (one random stream is shared under vmap), and one with a layer vmap cannot
batch (found by a trial run on the meta device). BatchNorm stacks: its running
statistics are stacked buffers, each model's updated in place by its own batches.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mibench.config.plugin_config import PluginConfig
from mibench.config.shapes import data_shape, forward_flops
from mibench.engine.store import stable_hash
from mibench.sdk import LossDefense, Objective, TrainingConfig
from mibench.sdk.batches import as_index
from mibench.sdk.dataset import Pool
from mibench.sdk.progress import progress_bar
from mibench.sdk.trainer import Trainer, TrainingDiverged

AUTO_MAX = 64  # stack: auto never stacks more models than this
AUTO_MEMORY_SHARE = 0.6  # ... and fits a stack in this share of the device's memory
ASSUMED_GPU_BYTES = 80 * 2**30  # a GPU's memory when none is here to ask (mibench validate on a laptop)


def defense_refusal(defense: PluginConfig) -> str | None:
    """Why models of ``defense`` cannot be stacked, or None: only a loss defense on the shared loop can."""
    cls = defense.info.cls
    if not issubclass(cls, LossDefense) or cls.train is not LossDefense.train:
        return f"defense {defense.label} drives its own training"
    return None


@lru_cache(maxsize=64)
def architecture_refusal(architecture: PluginConfig, input_shape: tuple[int, ...], num_classes: int) -> str | None:
    """Why ``architecture`` cannot be stacked, or None.

    Two copies are built and run stacked, forward and backward, on the meta device (no
    weights allocated, no compute), so any layer vmap cannot batch names itself here.
    """
    with torch.device("meta"):
        models = [architecture.create().build(input_shape, num_classes) for _ in range(2)]
        x = torch.zeros((2, 2, *input_shape))
    for module in models[0].modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"architecture {architecture.label} has dropout (one random stream under vmap)"
    try:
        for model in models:
            model.train()
        logits, features = StackedModels(models)(x)
        (logits.sum() + features.sum()).backward()
    except Exception as exc:  # noqa: BLE001 - the reason goes to the log; training goes on one at a time
        return f"architecture {architecture.label} does not run under vmap ({type(exc).__name__}: " \
               f"{' '.join(str(exc).split())[:200]})"
    return None


def run_refusal(run: Any) -> str | None:
    """Why the models of training run ``run`` cannot be stacked, or None."""
    refusal = defense_refusal(run.defense)
    if refusal is not None:
        return refusal
    shape = data_shape(run.dataset)
    if shape is None:
        return f"the shape of dataset {run.dataset.label} is unknown before it is loaded"
    return architecture_refusal(run.architecture, tuple(shape.input_shape), shape.num_classes)


@lru_cache(maxsize=64)
def activation_elements(architecture: PluginConfig, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Floats one training image's forward pass produces (every leaf module's output; meta device, no memory)."""
    with torch.device("meta"):
        model = architecture.create().build(input_shape, num_classes)
        x = torch.zeros((1, *input_shape))
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += sum(t.numel() for t in (output if isinstance(output, tuple) else (output,))
                     if isinstance(t, torch.Tensor))

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    model.train()
    model(x)
    for hook in hooks:
        hook.remove()
    return total


def model_bytes(run: Any, input_shape: tuple[int, ...], num_classes: int) -> int:
    """A rough bound on one stacked model's training memory: weights, gradients and optimiser state (4 copies of
    the parameters), and each image's activations twice over (kept for backward, and their gradients)."""
    _, params = forward_flops(run.architecture, input_shape, num_classes)
    activations = activation_elements(run.architecture, input_shape, num_classes)
    return 4 * (4 * params + 2 * activations * run.training.batch_size)


def device_bytes(device: torch.device) -> int:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    return ASSUMED_GPU_BYTES


def stack_limit(run: Any, device: torch.device) -> int:
    """How many models like ``run``'s one stack may hold on ``device`` (1: no stacking).

    ``auto``: none on the CPU (stacking is slower there); on CUDA as many as fit
    :data:`AUTO_MEMORY_SHARE` of the device's memory by :func:`model_bytes`, at most
    :data:`AUTO_MAX`.
    """
    setting = run.training.stack
    if setting == "off":
        return 1
    if setting != "auto":
        return int(setting)
    if device.type != "cuda":
        return 1
    shape = data_shape(run.dataset)
    if shape is None:
        return 1
    need = model_bytes(run, tuple(shape.input_shape), shape.num_classes)
    return max(1, min(AUTO_MAX, int(AUTO_MEMORY_SHARE * device_bytes(device)) // need))


def stack_key(run: Any) -> str:
    """Runs with equal keys can share a stack: one pool, architecture, defense config and training config."""
    identity = run.identity()
    for own in ("role", "seed", "engine"):  # what makes a model itself (and what is the same for all)
        identity.pop(own, None)
    return stable_hash(identity)


@dataclass
class StackMember:
    """One model of a stack: its network, objective, trainer (its generator) and training indices."""

    model: nn.Module
    objective: Objective
    trainer: Trainer
    indices: np.ndarray


class StackedModels:
    """K networks of one architecture as stacked tensors, and one vmapped forward over them."""

    def __init__(self, models: list[nn.Module]) -> None:
        self.models = models
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")

        def call(params, buffers, x):
            return functional_call(self.base, (params, buffers), (x,))

        self.forward = vmap(call, in_dims=(0, 0, 0))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward(self.params, self.buffers, x)

    def unstack(self) -> None:
        """Copy each model's slice back into its own network."""
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, tensor in model.named_parameters():
                    tensor.copy_(self.params[name][k])
                for name, tensor in model.named_buffers():
                    tensor.copy_(self.buffers[name][k])


def fit_stacked(members: list[StackMember], config: TrainingConfig, pool: Pool, device: torch.device,
                desc: str = "train") -> list[TrainingDiverged | None]:
    """Train every member's model as :meth:`Trainer.fit` would alone; per member, its divergence or None.

    Every member must have as many training samples as the others (equal batches). A
    member whose epoch loss is not finite stops counting (its TrainingDiverged is
    returned; the other members train on).
    """
    sizes = {len(m.indices) for m in members}
    if len(sizes) != 1:
        raise ValueError(f"a stack needs members of one training size, got sizes {sorted(sizes)}")
    lead = members[0].trainer
    everything = np.arange(len(pool))
    x = lead.inputs(everything)  # the whole pool once on the device; each member indexes its own rows
    targets = pool.labels.to(device)
    rows = [torch.as_tensor(as_index(m.indices), device=device) for m in members]
    for m in members:
        m.model.train()
    stacked = StackedModels([m.model for m in members])
    optimizer = lead.make_optimizer(list(stacked.params.values()))
    n = sizes.pop()
    n_batches = -(-n // config.batch_size)
    alive = list(range(len(members)))
    diverged: list[TrainingDiverged | None] = [None] * len(members)
    with progress_bar(total=config.epochs * n_batches, desc=desc, unit="batch") as bar:
        for epoch in range(1, config.epochs + 1):
            lead.set_lr(optimizer, epoch)
            perms = [torch.randperm(n, generator=m.trainer.generator).to(device) for m in members]
            loss_sums = torch.zeros(len(members), device=device)
            for start in range(0, n, config.batch_size):
                batches = [m.trainer.batch(x, targets, rows[k][perms[k][start : start + config.batch_size]])
                           for k, m in enumerate(members)]
                xb = torch.stack([b[0] for b in batches])
                with lead.autocast():
                    logits, features = stacked(xb)
                losses = torch.stack([members[k].objective(logits[k].float(), features[k].float(), batches[k][1],
                                                           epoch) for k in range(len(members))])
                optimizer.zero_grad(set_to_none=True)
                for m in members:
                    m.objective.zero_grad(set_to_none=True)
                losses[alive].sum().backward()
                optimizer.step()
                for k in alive:
                    members[k].objective.step()
                loss_sums += losses.detach()
                bar.update(1)
            sums = loss_sums.tolist()  # the one host sync of the epoch, as in Trainer.fit
            for k in list(alive):
                if not math.isfinite(sums[k]):
                    diverged[k] = TrainingDiverged.at_epoch(epoch, sums[k])
                    alive.remove(k)
            finite = [sums[k] / n_batches for k in alive]
            bar.set_postfix(epoch=epoch, models=len(alive),
                            loss=f"{np.mean(finite):.4f}" if finite else "nan", refresh=False)
            if not alive:
                break
    stacked.unstack()
    for m in members:
        m.model.eval()
    return diverged


@dataclass
class StackPlan:
    """How the training runs of one stack key will train: ``stacks`` stacks of up to ``limit``, or alone."""

    label: str
    models: int
    limit: int
    refusal: str | None

    def describe(self) -> str:
        if self.refusal is not None:
            return f"{self.label}: {self.models} models one at a time ({self.refusal})"
        if self.limit <= 1:
            return f"{self.label}: {self.models} models one at a time (training.stack off)"
        stacks = -(-self.models // self.limit)
        return f"{self.label}: {self.models} models in {stacks} stack{'s' * (stacks > 1)} of up to {self.limit}"


def stack_plans(runs: list[Any], device: torch.device) -> list[StackPlan]:
    """:class:`StackPlan` per stack key of ``runs``, in the order the keys first appear."""
    groups: dict[str, list[Any]] = {}
    for run in runs:
        groups.setdefault(stack_key(run), []).append(run)
    plans = []
    for members in groups.values():
        run = members[0]
        label = f"{run.dataset.label} / {run.architecture.label} / {run.defense.label}"
        limit = stack_limit(run, device)
        plans.append(StackPlan(label, len(members), limit, run_refusal(run) if limit > 1 else None))
    return plans
