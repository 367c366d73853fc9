"""The grid file's schema: what to train, how, and which attacks to run on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from mibench.config.execution import ExecutionConfig
from mibench.sdk.training_config import StrictModel, TrainingConfig


def _name_to_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class PluginEntry(StrictModel):
    """A plugin in the grid: ``name``, or ``{name, params, sweep}``.

    ``sweep`` maps a param to a list of values; every combination of the lists is
    its own config (its own leaderboard row).
    """

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)


Entry = Annotated[PluginEntry, BeforeValidator(_name_to_entry)]


class ShadowConfig(StrictModel):
    count: int = Field(5, ge=0, le=256, description="Shadow models per target (REFERENCE §1).")
    training: str = Field(
        "adaptive",
        min_length=1,
        description="'adaptive': shadows use the target's defense and params; "
        "or a defense name (e.g. 'ce'), used with its default params for every shadow.",
    )
    plain: str = Field(
        "ce", min_length=1,
        description="The defense (default params) of shadows for attacks that declare plainly trained shadows.",
    )


class CanaryEntry(StrictModel):
    """``pool.canaries``: a canary design by name, how many canaries, and the design's params (REFERENCE §8)."""

    name: str = Field(min_length=1, description="A registered canary design: mislabeled, noise, blank, duplicated.")
    count: int = Field(500, ge=1, le=1_000_000, description="Canaries added to the sample set D (Aerni et al.: "
                       "500, about 1% of CIFAR-10's training set).")
    params: dict[str, Any] = Field(default_factory=dict, description="The design's own params.")


class EpsilonConfig(StrictModel):
    """``pool.epsilon``: how every pool row's empirical epsilon lower bound is computed (REFERENCE §9)."""

    method: Literal["one-run", "threshold"] = Field(
        "one-run", description="one-run: Steinke, Nasr and Jagielski 2023 (guesses with abstention); threshold: "
        "one threshold with Clopper-Pearson bounds on TPR and FPR.")
    delta: float = Field(1e-5, ge=0, lt=1, description="The delta of the (epsilon, delta) the bound is on.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence of the bound, shared by every attack "
                              "config of the grid (each one's rows are bounded at 1 - (1 - confidence) / configs).")


class PoolConfig(StrictModel):
    """The pool protocol (REFERENCE §7): M models, each trained on a random half of one sample set."""

    models: int = Field(16, ge=1, le=256, description="Models in the pool; each is the target once, the others "
                        "its reference models (at least 4).")
    dataset_fraction: float = Field(0.5, gt=0, lt=1, description="Share of the pool that is the sample set D; "
                                    "the rest is the population no model trains on (RMIA's z samples).")
    canaries: Annotated[CanaryEntry | None, BeforeValidator(_name_to_entry)] = Field(
        None, description="A canary audit (REFERENCE §8): canaries added to D, each IN for half of the models; "
        "every row then reports its metrics over all, clean and canary samples.")
    epsilon: EpsilonConfig = Field(default_factory=EpsilonConfig, description="The empirical epsilon of each row.")
    base: Literal["half", "always"] = Field(
        "half", description="With canaries: 'half', every sample of D is IN for half of the models; 'always', "
        "Aerni et al.'s leave-one-out design: every non-canary sample is IN for every model and only the "
        "canaries vary (canary metrics only).")


MIN_POOL_MODELS = 4  # fewer leave a target under 2 IN and 2 OUT references per sample

MAX_SEED = 2**31 - 1
MAX_SEEDS = 1000
MAX_CELLS = 100_000

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Grid(StrictModel):
    """A whole benchmark: the cross product of datasets, architectures, defenses and seeds."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Name of the run.")
    output: Path | None = Field(None, description="Output directory; default runs/<name>.")
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_SEEDS,
                              description="Seeds of the target models (at most 1000, each 0 to 2^31 - 1).")
    split_seed: Seed = Field(0, description="Seed of the target/shadow and member/non-member splits.")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$")
    datasets: list[Entry] = Field(min_length=1)
    architectures: list[Entry] = Field(min_length=1)
    defenses: list[Entry] = Field(min_length=1)
    attacks: list[Entry] = Field(min_length=1)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    protocol: str = Field(
        "paper", description="The evaluation design, by its registered name: 'paper' (one target, shadows on "
        "the other half of the pool; REFERENCE §1) or 'pool' (a model pool where every model is the target in "
        "turn; REFERENCE §7).")
    pool: PoolConfig = Field(default_factory=PoolConfig, description="The pool protocol's models and sample set.")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        if any(s < 0 for s in seeds):
            raise ValueError("seeds must be >= 0")
        return seeds

    @property
    def output_dir(self) -> Path:
        return self.output.expanduser() if self.output is not None else Path("runs") / self.name
