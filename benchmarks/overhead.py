"""mibench's trainer against a bare PyTorch loop: same model, data, batch size, epochs.

    python -m benchmarks.overhead [--samples 3000] [--epochs 3] [--repeats 3]

Both train small-cnn on Fashion-MNIST (digits when the Debian package is not
installed) from the same initial weights, in this one process (see
trainer_compare.py). Target: mibench / bare <= 1.05.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.trainer_compare import compare

from mibench.config.plugin_config import PluginConfig
from mibench.sdk.training_config import TrainingConfig
from mibench.registry.loading import get_registry
from mibench.engine.pools import load_pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    registry = get_registry()
    info = registry.get("dataset", "fashion-mnist")
    dataset = PluginConfig(info, info.cls.Params(pool_size=args.samples))
    if info.cls(dataset.params).missing_data():
        info = registry.get("dataset", "digits")
        dataset = PluginConfig(info, info.cls.Params())
    pool = load_pool(dataset)
    indices = torch.arange(min(args.samples, len(pool))).numpy()
    torch.manual_seed(0)
    model = registry.get("architecture", "small-cnn").cls().build(pool.input_shape, pool.num_classes)
    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size,
                            optimizer={"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4})
    result = compare(model, pool, indices, config, torch.device("cpu"), args.repeats)
    print(f"data: {dataset.label}, {len(indices)} samples x {args.epochs} epochs, batch {args.batch_size}, "
          f"small-cnn, {torch.get_num_threads()} threads, {args.repeats} repeats (median)")
    print(result.report() + "  (target <= 1.05)")


if __name__ == "__main__":
    main()
