"""Training-time augmentation for 32x32 image datasets: a random crop and a horizontal flip per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PADDING = 4


def crop_flip(batch: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int = PADDING) -> torch.Tensor:
    """Crop each image of ``batch`` (N x C x H x W) from its zero-padded copy, then flip it if asked.

    ``offsets`` (N x 2, each in [0, 2 * padding]) is the top-left corner of sample i's
    H x W window in the padded image: ``(padding, padding)`` returns it unchanged,
    ``(0, 0)`` moves its content ``padding`` pixels down and right. ``flips`` (N, bool)
    mirrors the crop left to right. Both must be on the batch's device.
    """
    n, c, h, w = batch.shape
    padded = F.pad(batch, (padding, padding, padding, padding))
    rows = offsets[:, 0, None] + torch.arange(h, device=batch.device)  # N x H, in padded coordinates
    cols = offsets[:, 1, None] + torch.arange(w, device=batch.device)  # N x W
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * padding))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def random_crop_flip(batch: torch.Tensor, generator: torch.Generator, padding: int = PADDING) -> torch.Tensor:
    """Random crop with ``padding`` zero pixels and a coin-flip horizontal flip, drawn per sample.

    The usual CIFAR augmentation (RandomCrop(32, padding=4) + RandomHorizontalFlip), on a
    whole [0, 1] batch at once on its own device. The random numbers come from the
    CPU ``generator``, so a seed gives the same crops on every device.
    """
    n = batch.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.randint(0, 2, (n,), generator=generator).bool()
    return crop_flip(batch, offsets.to(batch.device), flips.to(batch.device), padding)
