"""Training images/s of mibench's trainer against a bare loop: same model, batch, precision.

    python -m benchmarks.throughput [--arch resnet18] [--batch-size 256] [--precision fp32|bf16]
                                    [--device auto] [--batches 4] [--repeats 3]

Synthetic CIFAR-shaped data (the speed does not depend on the pixels), in one process
(see trainer_compare.py). On a GPU the trainer holds the data on the device, uses
channels_last and, with --precision bf16, bfloat16 autocast; the bare loop does the same.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.trainer_compare import compare

from mibench.sdk.training_config import TrainingConfig
from mibench.sdk.dataset import Pool
from mibench.engine.devices import resolve_device
from mibench.registry.loading import get_registry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=4, help="batches per timed run (one epoch)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    device = resolve_device(args.device)
    n = args.batch_size * args.batches
    gen = torch.Generator().manual_seed(0)
    pool = Pool(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen),
                torch.randint(0, 10, (n,), generator=gen), 10, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    model = get_registry().get("architecture", args.arch).cls().build(pool.input_shape, 10)
    config = TrainingConfig(epochs=1, batch_size=args.batch_size, precision=args.precision,
                            optimizer={"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
    result = compare(model, pool, torch.arange(n).numpy(), config, device, args.repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.arch}, batch {args.batch_size} x {args.batches} batches, {args.precision}, {name}, "
          f"{args.repeats} repeats (median)")
    print(result.report())


if __name__ == "__main__":
    main()
