"""The device a run trains and predicts on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """The grid's device; on CUDA also let cuDNN pick its fastest kernels and matmuls use TF32."""
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return device
