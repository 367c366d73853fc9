"""Batched Grad-x against the one-sample-at-a-time loop of the anchors: same numbers, how much faster.

    python -m benchmarks.gradx [--models small-cnn resnet18 densenet121] [--batch 256] [--device cpu] [--repeats 3]

For each model (random weights, eval mode) and one batch of ``--batch`` CIFAR-shaped
inputs (3 x 32 x 32, random: the cost does not depend on the values), it computes the
per-sample norm of d CE / d x with mibench's batched function (one backward pass for
the batch) and with two one-sample-at-a-time loops: the anchors' (batch size 1,
``loss.backward()``, which also fills every weight gradient) and a leaner one that asks
autograd for the input gradient only. Everything is warmed up, then timed in this
process (median of ``--repeats`` for the batched pass, one run of each loop). Then the
numbers: the largest relative difference between batched and looped norms, and of
each against a float64 pass (TF32 is switched off on CUDA so all run in true float32).
In float64 the two ways agree exactly; in float32 a deep network's batch-1 kernels
round differently, and the float64 pass shows which side is off. Target: >= 20x on
the CPU.

The models are the registered architecture plugins (random weights). In float32 a
few samples of a deep ReLU network differ by more than 1e-5 between any two ways of
computing (a pre-activation near zero lands on the other side of the kink), so the
report gives the median and the share of samples within 1e-5 as well as the maximum.

On the CPU the speedup shrinks as the model grows: a batch-1 convolution of ResNet18
already keeps the cores busy, so batching saves the per-call overhead and the weight
gradients the anchors' loop also computes (a third of the work), not idle time. The
20x target holds only where per-sample overhead dominates; a GPU, where a batch of one
leaves the device mostly idle, is where batching pays most.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mibench.registry.loading import get_registry
from mibench_plugins.attacks.gradient import input_gradient_norms

SHAPE, CLASSES = (3, 32, 32), 10


def build(name: str) -> nn.Module | None:
    registry = get_registry()
    if name not in registry.names("architecture"):
        return None
    return registry.get("architecture", name).cls().build(SHAPE, CLASSES)


def loop_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, anchors: bool = True) -> torch.Tensor:
    """One sample at a time, one backward each: into every weight as the anchors do, or into x only."""
    norms = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        logits, _ = model(xi)
        loss = F.cross_entropy(logits.float(), y[i : i + 1])
        if anchors:
            model.zero_grad(set_to_none=True)
            loss.backward()
            g = xi.grad
        else:
            (g,) = torch.autograd.grad(loss, xi)
        norms.append(g.flatten().norm())
    return torch.stack(norms)


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["small-cnn", "resnet18", "densenet121"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, *SHAPE, generator=gen).to(device)
    y = torch.randint(0, CLASSES, (args.batch,), generator=gen).to(device)
    print(f"device {device}, {torch.get_num_threads()} CPU thread(s), batch {args.batch}, torch {torch.__version__}")
    for name in args.models:
        torch.manual_seed(0)
        built = build(name)
        if built is None:
            print(f"{name}: not a registered architecture, skipped")
            continue
        model = built.to(device).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for anchors in (True, False):  # warm-up
            loop_norms(model, x[:2], y[:2], anchors)
        input_gradient_norms(model, x[:2], y[:2])
        batched_times = []
        for _ in range(args.repeats):
            batched, seconds = timed(lambda: input_gradient_norms(model, x, y), device)
            batched_times.append(seconds)
        batch_seconds = statistics.median(batched_times)
        print(f"{name} ({params:.1f}M params): batched {batch_seconds:.3f}s")
        looped = {}
        for anchors, label in ((True, "anchors' loop (backward into every weight)"), (False, "loop, input gradient only")):
            looped[anchors], loop_seconds = timed(lambda: loop_norms(model, x, y, anchors), device)
            print(f"  {label}: {loop_seconds:.3f}s, speedup {loop_seconds / batch_seconds:.1f}x")
        truth = input_gradient_norms(model.double(), x.double(), y)
        pairs = {"batched vs loop": (batched, looped[True]), "batched vs float64": (batched, truth),
                 "loop vs float64": (looped[True], truth)}
        for label, (a, b) in pairs.items():
            rel = ((a.double() - b.double()).abs() / b.double().abs()).cpu()
            within = (rel <= 1e-5).float().mean().item()
            print(f"  {label}: relative difference median {rel.median():.1e}, max {rel.max():.1e}; "
                  f"{within:.1%} of samples within 1e-5")


if __name__ == "__main__":
    main()
