"""DP-SGD (Abadi et al. 2016) through Opacus: per-sample clipping, Gaussian noise, Poisson sampling."""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mibench.sdk import Defense, Params, TrainedModel, Trainer, TrainingContext, hookimpl
from mibench_plugins.defenses.ce import CrossEntropy

INSTALL_HINT = "the dp-sgd defense needs Opacus: pip install 'mibench[dp]'"


class DPSGDParams(Params):
    noise_multiplier: float = Field(
        1.0, gt=0, description="Std of the Gaussian noise over the clipping norm (sigma)."
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Per-sample gradient clipping norm (C).")
    delta: float = Field(1e-5, gt=0, lt=1, description="The delta of the (epsilon, delta) reported; keep it below 1/N.")
    accountant: Literal["rdp", "prv", "gdp"] = Field("rdp", description="Opacus privacy accountant for epsilon.")
    fix_batchnorm: bool = Field(
        False, description="Replace batch norm by group norm (Opacus' ModuleValidator.fix) instead of refusing."
    )


def _validator():
    try:
        from opacus.validators import ModuleValidator
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ModuleValidator


def batch_norm_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class PrivateTrainer(Trainer):
    """The shared trainer with Opacus' DP optimiser and its Poisson-sampled batches.

    ``fit`` runs unchanged: it gets the DP optimiser from :meth:`make_optimizer`
    and its batches from :meth:`batches`, which turns each Poisson draw of
    positions (from Opacus' data loader) into a normalised batch.
    """

    def __init__(self, base: Trainer, optimizer: torch.optim.Optimizer, loader: DataLoader) -> None:
        super().__init__(base.config, base.pool, base.device, base.seed, base.desc)
        self.generator = base.generator
        self.dp_optimizer = optimizer
        self.loader = loader

    def make_optimizer(self, params, config=None):
        """The DP optimiser, already made (by ``make_private``) for the model's parameters."""
        return self.dp_optimizer

    def batches(self, x, targets, batch_size=None, augment=True):
        for (positions,) in self.loader:
            yield self.batch(x, targets, positions.to(self.device), augment)


class DPSGD(Defense):
    """DP-SGD through Opacus: per-sample clipping and Gaussian noise; the spent epsilon goes into the row.

    Opacus' ``PrivacyEngine.make_private`` wraps the model (per-sample
    gradients), the grid's optimiser (clip each sample's gradient to
    ``max_grad_norm``, add N(0, (noise_multiplier * max_grad_norm)^2) noise) and
    the data (Poisson sampling with rate batch_size / N, Opacus' default, which
    the accounting assumes); epochs, batch size, learning rate and schedule come
    from the grid's training block. ``info`` reports epsilon at ``delta``
    (default 1e-5, below 1/N for datasets up to 100,000 samples) from the
    ``accountant`` (default rdp), with sigma, C and the sample rate. Defaults
    sigma 1.0 and C 1.0 are mibench's (the CRL code's values are unpublished;
    RelaxLoss ships C 1.2 and sigma 0.01, which gives no meaningful epsilon).

    Batch norm mixes samples, so per-sample gradients do not exist: a model with
    it is refused with a message naming the layers, unless ``fix_batchnorm``
    is true, which replaces each batch norm by Opacus' group norm and says so in
    ``info`` (``converted``). The released weights then belong to the group-norm
    network, which the engine rebuilds through :meth:`released_architecture`;
    the model evaluated is not the grid's batch-norm architecture. The noise
    comes from a generator seeded by the model's seed (Opacus' secure_mode off),
    so runs are reproducible; it is a benchmark, not a production release.
    Needs the optional extra: ``pip install 'mibench[dp]'``.
    """

    name = "dp-sgd"
    training_cost = 2.5  # per-sample gradients and clipping: about 2-3 plain steps
    Params = DPSGDParams

    def released_architecture(self, model: nn.Module) -> nn.Module:
        if self.params.fix_batchnorm and batch_norm_layers(model):
            return _validator().fix(model)
        return model

    def train(self, ctx: TrainingContext) -> TrainedModel:
        validator = _validator()
        from opacus import PrivacyEngine

        p = self.params
        model = ctx.build_model()
        layers = batch_norm_layers(model)
        if layers and not p.fix_batchnorm:
            raise ValueError(
                f"dp-sgd cannot train a model with batch norm ({', '.join(layers)}): per-sample gradients "
                "need layers that do not mix samples. Use a GroupNorm variant of the architecture (small-cnn: "
                "params {norm: group}) or set the dp-sgd param fix_batchnorm: true to convert it."
            )
        model = self.released_architecture(model)
        for module in model.modules():  # Opacus' backward hooks forbid in-place activations; same weights
            if getattr(module, "inplace", False):
                module.inplace = False
        problems = validator.validate(model, strict=False)
        if problems:
            raise ValueError("dp-sgd: Opacus cannot train this model: " + "; ".join(map(str, problems)))

        indices = ctx.train_indices
        positions = DataLoader(
            TensorDataset(torch.arange(len(indices))),
            batch_size=ctx.trainer.config.batch_size,
            generator=torch.Generator().manual_seed(ctx.seed),
        )
        with warnings.catch_warnings():  # seeded noise is the point here: runs must be reproducible
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            engine = PrivacyEngine(accountant=p.accountant)
        private_model, optimizer, loader = engine.make_private(
            module=model,
            optimizer=ctx.trainer.make_optimizer(model.parameters()),
            data_loader=positions,
            noise_multiplier=p.noise_multiplier,
            max_grad_norm=p.max_grad_norm,
            noise_generator=torch.Generator(device=ctx.device).manual_seed(ctx.seed + 1),
        )
        with warnings.catch_warnings():  # Opacus' hooks on the first layer, whose input needs no gradient
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            PrivateTrainer(ctx.trainer, optimizer, loader).fit(private_model, indices, CrossEntropy())
        info: dict[str, float | int | str] = {
            "epsilon": float(engine.get_epsilon(p.delta)),
            "delta": p.delta,
            "noise_multiplier": p.noise_multiplier,
            "max_grad_norm": p.max_grad_norm,
            "sample_rate": round(1 / len(loader), 6),
            "accountant": p.accountant,
        }
        if layers:
            info["converted"] = "batchnorm->groupnorm"
        return TrainedModel(private_model.to_standard_module(), indices, info)


@hookimpl
def register_defenses(register):
    register(DPSGD)
