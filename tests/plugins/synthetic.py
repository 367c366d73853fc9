"""Models whose logits are exact on every CPU: the inputs of the machine-independent golden test.

Training in float32 gives other bits on another CPU (other vector kernels, other thread
splits), so a golden test of the scoring path must not train. ``golden-logits`` "trains"
a ``lookup`` network instead: it fills a table with synthetic logits made of integers
drawn by PCG64 (exact integer arithmetic) and scaled by a power of two (exact in
float32), and the network answers each input image with the row of the pool sample it
is. Every logit is therefore the same bits on any machine, and what the engine does
with them from there on (splits, predictions, attacks, thresholds, metrics) is what the
golden test pins.

The logits look like a model's: every sample has a difficulty shared by all models (how
confident any model is on its true class), every model its own noise, and a model is
more confident on its members by a random margin. Reference attacks that model the
per-sample difficulty (LiRA, RMIA) therefore do better than global thresholds, as on
real models.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from mibench.sdk import Architecture, Defense, Params, TrainedModel, hookimpl
from mibench.sdk.batches import model_inputs

SCALE = 2.0**-10  # logits are integers times SCALE: exact in float32 below 2**14


def synthetic_logits(labels: np.ndarray, num_classes: int, members: np.ndarray, seed: int) -> np.ndarray:
    """pool x classes float32 logits of one model trained on ``members`` with ``seed`` (exact integers x SCALE)."""
    n = len(labels)
    shared = np.random.default_rng(20240601)  # the same for every model: per-sample difficulty
    difficulty = shared.integers(0, 4 << 10, n)
    confuser = (labels + shared.integers(1, num_classes, n)) % num_classes
    digest = hashlib.sha256(np.ascontiguousarray(np.sort(members), dtype=np.int64).tobytes()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    ints = rng.integers(-2 << 10, 2 << 10, (n, num_classes))
    rows = np.arange(n)
    ints[rows, labels] += (1 << 10) + difficulty
    ints[rows, confuser] += (4 << 10) - difficulty
    inside = np.zeros(n, dtype=bool)
    inside[members] = True
    ints[rows, labels] += np.where(inside, rng.integers(0, 3 << 10, n), 0)
    return (ints * SCALE).astype(np.float32)


class LookupNet(nn.Module):
    """Answers an image of the pool with that sample's row of ``table``; ``keys`` are the pool's model inputs.

    The match is the nearest key (float64 distances); equal images (the pool has a few)
    go to the lowest index, so the answer never depends on rounding.
    """

    def __init__(self, pool_size: int, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("keys", torch.zeros(pool_size, input_dim))
        self.register_buffer("table", torch.zeros(pool_size, num_classes))
        self.unused = nn.Parameter(torch.zeros(()))  # a network has parameters; this one learns nothing

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(1).double()
        keys = self.keys.double()
        dist = (flat * flat).sum(1, keepdim=True) - 2 * flat @ keys.T + (keys * keys).sum(1)
        nearest = dist.min(1, keepdim=True).values
        index = (dist <= nearest + 1e-6).to(torch.int8).argmax(1)  # first of the (near-)zero distances
        return self.table[index] + 0 * self.unused, flat.float()


class LookupParams(Params):
    pool_size: int = 1797  # the digits pool


class Lookup(Architecture):
    """The network of ``golden-logits`` models (any input shape, ``pool_size`` samples)."""

    name = "lookup"
    Params = LookupParams

    def build(self, input_shape, num_classes):
        return LookupNet(self.params.pool_size, int(np.prod(input_shape)), num_classes)


class GoldenLogits(Defense):
    """Fills a ``lookup`` network with synthetic logits for its members (see the module docstring)."""

    name = "golden-logits"

    def train(self, ctx):
        model = ctx.build_model()
        pool = ctx.pool
        if model.table.shape[0] != len(pool):
            raise ValueError(f"lookup pool_size {model.table.shape[0]} != pool size {len(pool)}")
        members = np.asarray(ctx.train_indices)
        logits = synthetic_logits(pool.labels.numpy(), pool.num_classes, members, ctx.seed)
        with torch.no_grad():
            model.keys.copy_(model_inputs(pool, np.arange(len(pool)), ctx.device).flatten(1))
            model.table.copy_(torch.from_numpy(logits))
        return TrainedModel(model, members)


@hookimpl
def register_architectures(register):
    register(Lookup)


@hookimpl
def register_defenses(register):
    register(GoldenLogits)
