"""The grid's ``training:`` block: epochs, batch size, optimiser, learning-rate schedule."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mibench.sdk.params import NEUTRAL, tuning

# Bounds on what training can use: every number of a grid is finite and within these,
# so a typo (lr 1e300, epochs 1e12) is one clean line at validation, not a silent run.
MAX_LR = 1e3
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_STACK = 1024
FiniteLR = Annotated[float, Field(gt=0, le=MAX_LR, allow_inf_nan=False)]


class StrictModel(BaseModel):
    """A config block that refuses unknown keys and cannot be changed once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimizerConfig(StrictModel):
    name: Literal["sgd", "adam", "adamw"] = Field("sgd", description="Optimiser of the model.")
    lr: float = Field(0.1, gt=0, le=MAX_LR, allow_inf_nan=False, description="Base learning rate (at most 1000).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(5e-4, ge=0, le=1, allow_inf_nan=False, description="L2 weight decay.")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD only).")


class ScheduleConfig(StrictModel):
    """Learning rate per epoch (epochs counted from 1).

    - ``constant``: ``optimizer.lr`` throughout.
    - ``multistep``: multiply by ``gamma`` at each epoch in ``milestones``
      (RelaxLoss: milestones [150, 225] of 300).
    - ``piecewise``: ``lrs`` maps the first epoch of each stage to its lr
      (the CRL code: {1: 0.01, 2: 0.1, 51: 0.01, 81: 0.001}).
    - ``cosine``: cosine decay from ``optimizer.lr`` to 0 over the epochs.
    - ``triangle``: linear from ``start`` x lr up to lr at the fraction ``peak`` of
      training, then linear down to ``end`` x lr at its end (airbench's shape, 0.2, 0.23
      and 0.07; airbench steps it per batch, mibench per epoch, at each epoch's middle).
    """

    name: Literal["constant", "multistep", "piecewise", "cosine", "triangle"] = "constant"
    milestones: list[Annotated[int, Field(ge=1, le=MAX_EPOCHS)]] = Field(
        default_factory=list, max_length=1000, description="multistep: epochs where lr drops.")
    gamma: float = Field(0.1, gt=0, le=MAX_LR, allow_inf_nan=False, description="multistep: factor applied at each milestone.")
    lrs: dict[Annotated[int, Field(ge=1, le=MAX_EPOCHS)], FiniteLR] = Field(
        default_factory=dict, max_length=1000, description="piecewise: first epoch -> lr.")
    start: float = Field(0.2, ge=0, le=1, description="triangle: the first lr, as a fraction of optimizer.lr.")
    peak: float = Field(0.23, gt=0, lt=1, description="triangle: where the lr peaks, as a fraction of training.")
    end: float = Field(0.07, ge=0, le=1, description="triangle: the last lr, as a fraction of optimizer.lr.")

    @model_validator(mode="after")
    def _check(self) -> "ScheduleConfig":
        if self.name == "piecewise":
            if not self.lrs:
                raise ValueError("a piecewise schedule needs lrs: {first_epoch: lr, ...}")
            if 1 not in self.lrs:
                raise ValueError("a piecewise schedule's lrs must start at epoch 1")
            if any(lr <= 0 for lr in self.lrs.values()):
                raise ValueError("every lr must be > 0")
        if self.name == "multistep" and not self.milestones:
            raise ValueError("a multistep schedule needs milestones: [epoch, ...]")
        return self

    def lr_at(self, epoch: int, base_lr: float, epochs: int) -> float:
        """Learning rate during ``epoch`` (1-based) of ``epochs``."""
        import math

        if self.name == "constant":
            return base_lr
        if self.name == "multistep":
            return base_lr * self.gamma ** sum(1 for m in self.milestones if epoch > m)
        if self.name == "piecewise":
            start = max(e for e in self.lrs if e <= epoch)
            return self.lrs[start]
        if self.name == "triangle":
            t = (epoch - 0.5) / epochs
            if t <= self.peak:
                return base_lr * (self.start + (1.0 - self.start) * t / self.peak)
            return base_lr * (1.0 + (self.end - 1.0) * (t - self.peak) / (1.0 - self.peak))
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))


class TrainingOverride(StrictModel):
    """Per-architecture changes to the training block (DenseNet121 uses batch 32)."""

    epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS)
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH)
    optimizer: OptimizerConfig | None = None
    schedule: ScheduleConfig | None = None


# training: {preset: NAME} fills every key the block leaves unset (a nested block key by key).
TRAINING_PRESETS: dict[str, dict] = {
    # airbench94's published settings (Jordan 2024) for a batch-mean loss: batch 1024, Nesterov SGD with
    # momentum 0.85, its lr 11.5 and decoupled weight decay 0.0153 "per 1024 examples" of a summed loss, i.e.
    # torch's lr 11.5 / (1 + 1 / 0.15) = 1.5 and weight_decay 0.0153 / 11.5 = 0.00133 for the mean; its
    # triangular schedule; 10 epochs (its 9.9 rounded up, as its clean variant does).
    "airbench": {"epochs": 10, "batch_size": 1024,
                 "optimizer": {"name": "sgd", "lr": 1.5, "momentum": 0.85, "nesterov": True,
                               "weight_decay": 0.00133},
                 "schedule": {"name": "triangle", "start": 0.2, "peak": 0.23, "end": 0.07}},
}


class TrainingConfig(StrictModel):
    preset: Literal["airbench"] | None = Field(
        None, json_schema_extra=NEUTRAL,  # out of model keys: the values it sets are in them
        description="Fill every training key not given from a preset: airbench (the airbench network's batch "
        "size, optimiser and triangular schedule, 10 epochs).")
    epochs: int = Field(30, ge=1, le=MAX_EPOCHS, description="Training epochs of every model (at most 100,000).")
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="Training batch size (at most 2^20).")
    eval_batch_size: int = tuning(1024, "Batch size for predictions (speed and memory only).", ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 runs forward passes under bfloat16 autocast (GPU)."
    )
    channels_last: bool = tuning(True, "On CUDA, train conv nets in channels_last memory format (speed only).")
    stack: Literal["auto", "off"] | int = tuning(
        "auto", "Train up to K models of one architecture and training config at once (torch.func vmap; the same "
        "seeds, data order and optimiser state as one at a time). auto: on CUDA, as many as fit 60% of the GPU's "
        "memory (at most 64), on the CPU off (stacking is slower there); off or 1: one at a time.")
    overrides: dict[str, TrainingOverride] = Field(
        default_factory=dict, description="Architecture name -> settings that replace these."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        if not isinstance(data, dict) or data.get("preset") not in TRAINING_PRESETS:
            return data
        merged = {**TRAINING_PRESETS[data["preset"]], **data}
        for key, value in TRAINING_PRESETS[data["preset"]].items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                merged[key] = {**value, **data[key]}
        return merged

    @field_validator("stack", mode="before")
    @classmethod
    def _stack(cls, value):
        """One clear error for a bad ``stack``; YAML's bare off/on (booleans) read as off/auto."""
        if value is False or value is True:
            return "off" if value is False else "auto"
        if value in ("auto", "off") or (isinstance(value, int) and 1 <= value <= MAX_STACK):
            return value
        raise ValueError(f"stack must be auto, off or a number of models from 1 to {MAX_STACK}")

    def for_architecture(self, name: str) -> "TrainingConfig":
        """This block with the architecture's overrides applied (and none left)."""
        change = self.overrides.get(name)
        fields = self.model_dump(exclude={"overrides"})
        if change is not None:
            fields.update(change.model_dump(exclude_none=True))
        return TrainingConfig.model_validate(fields)
