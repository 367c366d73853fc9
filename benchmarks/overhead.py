"""mibench's trainer against a bare PyTorch loop: same model, data, batch size, epochs.

    python benchmarks/overhead.py [--samples 3000] [--epochs 3] [--repeats 3]

Both loops train small-cnn on Fashion-MNIST (digits when the Debian package is not
installed) from the same initial weights, after one warm-up run each, interleaved
``--repeats`` times (alternating which goes first) in this one process; the ratio of
the medians is printed. Target: mibench / bare <= 1.05.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from mibench.config.resolve import PluginConfig
from mibench.config.training import TrainingConfig
from mibench.plugins import get_registry
from mibench.pools import load_pool
from mibench.training import Trainer
from mibench_plugins.defenses.ce import CrossEntropy


def bare_loop(model, x, y, epochs, batch_size, lr, seed):
    """The loop a researcher would write by hand: normalised tensors, randperm, SGD."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            logits, _ = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


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
    arch = registry.get("architecture", "small-cnn")
    device = torch.device("cpu")
    torch.manual_seed(0)
    initial = arch.cls().build(pool.input_shape, pool.num_classes)

    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size,
                            optimizer={"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4})
    mean = torch.tensor(pool.mean).view(1, -1, 1, 1)
    std = torch.tensor(pool.std).view(1, -1, 1, 1)
    x = (pool.inputs[indices].float() / pool.scale - mean) / std
    y = pool.labels[indices]

    runners = {
        "bare": lambda model: bare_loop(model, x, y, args.epochs, args.batch_size, 0.05, seed=0),
        "mibench": lambda model: Trainer(config, pool, device, seed=0).fit(model, indices, CrossEntropy()),
    }
    for run in runners.values():  # warm-up: first-call allocations and kernel selection
        run(copy.deepcopy(initial))
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.repeats):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))  # alternate who goes first
        for name in order:
            model = copy.deepcopy(initial)
            start = time.perf_counter()
            runners[name](model)
            times[name].append(time.perf_counter() - start)

    bare, ours = statistics.median(times["bare"]), statistics.median(times["mibench"])
    images = len(indices) * args.epochs
    print(f"data: {dataset.label}, {len(indices)} samples x {args.epochs} epochs, batch {args.batch_size}, "
          f"small-cnn, {torch.get_num_threads()} threads, {args.repeats} repeats (median)")
    print(f"bare loop : {bare:7.2f} s  ({images / bare:7.0f} images/s)")
    print(f"mibench   : {ours:7.2f} s  ({images / ours:7.0f} images/s)")
    print(f"ratio mibench / bare = {ours / bare:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
