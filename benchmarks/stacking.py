"""Stacked training (``training.stack``) against one model at a time, in images/s, in one process.

    python -m benchmarks.stacking [--arch mlp small-cnn] [--stacks 1 4 16 64] [--device auto]
                                  [--data fashion-mnist|random] [--samples 5000] [--epochs 1]
                                  [--precision fp32|bf16] [--batch-size 128] [--root DIR]

For each architecture the baseline is mibench's trainer on one model (``Trainer.fit``, what
``stack: off`` runs), then K models trained as one stack (what ``stack: K`` runs), each
with its own seed and its own random half of the samples; a warm-up run of each comes
first. It prints images/s (models x samples x epochs / seconds) and the ratio to the
baseline. ``--data random`` uses CIFAR-shaped random images (``--shape``), for timing
where no dataset can be fetched (``--epoch-time`` adds the seconds of one epoch of one
model over ``--samples`` images).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mibench.engine.devices import resolve_device
from mibench.engine.stacking import StackMember, fit_stacked
from mibench.registry.loading import get_registry
from mibench.sdk.dataset import Pool
from mibench.sdk.trainer import Trainer
from mibench.sdk.training_config import TrainingConfig
from mibench_plugins.defenses.ce import CrossEntropy


def load(data: str, samples: int, shape: tuple[int, ...], root: str | None = None) -> Pool:
    if data == "random":
        gen = torch.Generator().manual_seed(0)
        return Pool(torch.randint(0, 256, (samples, *shape), dtype=torch.uint8, generator=gen),
                    torch.randint(0, 10, (samples,), generator=gen), 10, (0.5,) * shape[0], (0.25,) * shape[0])
    info = get_registry().get("dataset", "fashion-mnist")
    pool = info.cls(info.cls.Params(pool_size=samples, root=root)).load_pool()
    return Pool(pool.inputs[:samples], pool.labels[:samples], pool.num_classes, pool.mean, pool.std, pool.scale)


def members(arch: str, k: int, pool: Pool, config: TrainingConfig, device: torch.device) -> list[StackMember]:
    info = get_registry().get("architecture", arch)
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        model = info.cls().build(pool.input_shape, pool.num_classes).to(device)
        half = np.random.default_rng(seed).permutation(len(pool))[: len(pool) // 2]
        out.append(StackMember(model, CrossEntropy().to(device), Trainer(config, pool, device, seed), half))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device) -> float:
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def rate_alone(arch, pool, config, device) -> float:
    def run():
        (m,) = members(arch, 1, pool, config, device)
        m.trainer.fit(m.model, m.indices, m.objective)
    run()  # warm-up
    return len(pool) // 2 * config.epochs / timed(run, device)


def rate_stacked(arch, k, pool, config, device) -> float:
    def run():
        fit_stacked(members(arch, k, pool, config, device), config, pool, device)
    run()  # warm-up
    return k * (len(pool) // 2) * config.epochs / timed(run, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["mlp", "small-cnn"])
    ap.add_argument("--stacks", nargs="+", type=int, default=[1, 4, 16, 64])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", choices=["fashion-mnist", "random"], default="fashion-mnist")
    ap.add_argument("--shape", default="3,32,32", help="--data random: C,H,W")
    ap.add_argument("--root", default=None, help="fashion-mnist: the folder of its IDX files (default: Debian's)")
    ap.add_argument("--samples", type=int, default=5000, help="images; each model trains on a random half")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--epoch-time", action="store_true", help="also print one model's seconds per epoch")
    args = ap.parse_args()

    device = resolve_device(args.device)
    pool = load(args.data, args.samples, tuple(int(d) for d in args.shape.split(",")), args.root)
    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, precision=args.precision,
                            optimizer={"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.data} {tuple(pool.input_shape)}, {len(pool) // 2} training images per model, batch "
          f"{args.batch_size}, {args.epochs} epoch(s), {args.precision}, {name}")
    for arch in args.arch:
        alone = rate_alone(arch, pool, config, device)
        line = f"{arch}: one at a time {alone:,.0f} images/s"
        if args.epoch_time:
            line += f" ({len(pool) // 2 / alone:.2f} s per epoch of {len(pool) // 2} images)"
        print(line)
        for k in args.stacks:
            rate = rate_stacked(arch, k, pool, config, device)
            print(f"  stack of {k:>3}: {rate:>10,.0f} images/s, {rate / alone:.2f}x one at a time")


if __name__ == "__main__":
    main()
