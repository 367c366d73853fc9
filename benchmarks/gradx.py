"""Batched Grad-x against the one-sample-at-a-time loop of the anchors: same numbers, how much faster.

    python benchmarks/gradx.py [--models small-cnn resnet18] [--batch 256] [--device cpu] [--repeats 3]

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

``resnet18`` and ``densenet121`` are the registered architecture plugins when installed;
without one, ``resnet18`` falls back to a ResNet18-CIFAR defined here (3x3 stride-1
stem, no max-pool, BasicBlocks [2, 2, 2, 2], 11.2M parameters: REFERENCE §2), and
``densenet121`` is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mibench.plugins import get_registry
from mibench_plugins.attacks.gradient import input_gradient_norms

SHAPE, CLASSES = (3, 32, 32), 10


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """ResNet18 in its CIFAR form; forward returns (logits, 512-d features)."""

    def __init__(self, num_classes: int = CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x):
        features = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)
        return self.head(features), features


def build(name: str) -> tuple[nn.Module, str] | None:
    registry = get_registry()
    if name in registry.names("architecture"):
        return registry.get("architecture", name).cls().build(SHAPE, CLASSES), "registered plugin"
    if name == "resnet18":
        return ResNet18Cifar(), "local ResNet18-CIFAR"
    return None


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
        built = build(name)
        if built is None:
            print(f"{name}: not registered here, skipped")
            continue
        torch.manual_seed(0)
        model, source = built[0].to(device).eval(), built[1]
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for anchors in (True, False):  # warm-up
            loop_norms(model, x[:2], y[:2], anchors)
        input_gradient_norms(model, x[:2], y[:2])
        batched_times = []
        for _ in range(args.repeats):
            batched, seconds = timed(lambda: input_gradient_norms(model, x, y), device)
            batched_times.append(seconds)
        batch_seconds = statistics.median(batched_times)
        print(f"{name} ({source}, {params:.1f}M params): batched {batch_seconds:.3f}s")
        looped = {}
        for anchors, label in ((True, "anchors' loop (backward into every weight)"), (False, "loop, input gradient only")):
            looped[anchors], loop_seconds = timed(lambda: loop_norms(model, x, y, anchors), device)
            print(f"  {label}: {loop_seconds:.3f}s, speedup {loop_seconds / batch_seconds:.1f}x")
        truth = input_gradient_norms(model.double(), x.double(), y)
        rel = {k: ((v.double() - w).abs() / w.abs()).max().item()
               for k, (v, w) in {"loop": (batched, looped[True].double()), "batched64": (batched, truth),
                                 "loop64": (looped[True], truth)}.items()}
        verdict = "same numbers" if rel["loop"] <= 1e-5 else "beyond 1e-5"
        print(f"  numbers: batched vs loop, max relative difference {rel['loop']:.1e} ({verdict}); "
              f"against float64: batched {rel['batched64']:.1e}, loop {rel['loop64']:.1e}")


if __name__ == "__main__":
    main()
