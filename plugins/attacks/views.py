"""Augmented query views of an image: mirrors and pixel shifts, the queries attacks send beside the image.

A view is ``(mirror, dx, dy)``: the image, mirrored left-right if asked, then moved ``dx``
pixels right and ``dy`` down. The vacated border is filled as ``fill`` says:

- ``reflect``: mirrored from inside the image, without repeating the edge (torch's and
  TensorFlow's REFLECT padding), as Carlini et al.'s LiRA code pads before cropping;
- ``nearest``: the edge pixel repeated (scipy.ndimage.shift's mode='nearest'), as
  Choquette-Choo et al.'s label-only code fills;
- ``zero``: zeros (a pad-and-crop with zero padding).

Views are black-box queries on [0, 1] images (:func:`mibench.sdk.unit_inputs`); every
view but the plain image counts as a query of the model.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from mibench.sdk import ModelView, Params, unit_inputs

Fill = Literal["reflect", "nearest", "zero"]
View = tuple[bool, int, int]  # (mirror, dx, dy)
PLAIN: View = (False, 0, 0)

_PAD_MODES = {"reflect": "reflect", "nearest": "replicate", "zero": "constant"}
QUERY_BATCH = 1024  # samples per query batch of one view
Augmentations = Literal["none", "mirror", "mirror-shifts"]


def mirror_views() -> list[View]:
    """The image and its mirror: LiRA's default queries in its authors' code."""
    return [PLAIN, (True, 0, 0)]


def square_views(radius: int, mirror: bool = True) -> list[View]:
    """Every shift (dx, dy) in [-radius, radius]^2, each also mirrored if ``mirror``: 2 (2r + 1)^2 views."""
    shifts = range(-radius, radius + 1)
    return [(m, dx, dy) for m in ((False, True) if mirror else (False,)) for dy in shifts for dx in shifts]


def shifted(images: torch.Tensor, dx: int, dy: int, fill: Fill = "zero") -> torch.Tensor:
    """``images`` (N x C x H x W) moved ``dx`` pixels right and ``dy`` down, the border filled by ``fill``."""
    if dx == 0 and dy == 0:
        return images
    h, w = images.shape[-2:]
    if fill == "zero" and (abs(dx) >= w or abs(dy) >= h):
        return torch.zeros_like(images)
    pad = max(abs(dx), abs(dy))
    if fill == "reflect" and pad >= min(h, w):
        raise ValueError(f"a reflect-filled shift of {pad} pixels needs images larger than {pad}, got {h} x {w}")
    padded = F.pad(images, (pad, pad, pad, pad), mode=_PAD_MODES[fill])
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def view(images: torch.Tensor, mirror: bool, dx: int, dy: int, fill: Fill = "zero") -> torch.Tensor:
    """One view of N x C x H x W images: optionally mirrored (left-right), then shifted."""
    return shifted(images.flip(-1) if mirror else images, dx, dy, fill)


class ViewParams(Params):
    """The query views of a reference attack (LiRA, RMIA): which, beside the plain image."""

    augmentations: Augmentations = Field(
        "none", description="Query views beside the plain image: mirror (2 views), mirror-shifts (every shift in "
        "[-shift, shift]^2 of the image and its mirror, reflect-filled: 18 views at shift 1); none: the image only.")
    shift: int = Field(1, ge=1, le=4, description="mirror-shifts only: the largest shift, in pixels.")

    def views(self) -> list[View]:
        """The query views, the plain image first."""
        if self.augmentations == "mirror":
            return mirror_views()
        if self.augmentations == "mirror-shifts":
            return [PLAIN] + [v for v in square_views(self.shift) if v != PLAIN]
        return [PLAIN]


Signal = Callable[[torch.Tensor, torch.Tensor], np.ndarray]


def view_signals(model: ModelView, indices: np.ndarray, views: list[View], signal: Signal,
                 plain: np.ndarray) -> np.ndarray:
    """(n, len(views)): ``plain`` (the signal of the cached logits) for the plain view, then ``signal`` of the
    model's answers to each other view of the samples, reflect-filled (black-box queries, counted)."""
    columns = [plain]
    for mirror, dx, dy in views[1:]:
        values = [np.zeros(0)]
        for start in range(0, len(indices), QUERY_BATCH):
            chunk = np.asarray(indices[start : start + QUERY_BATCH])
            images = view(unit_inputs(model.pool, chunk, model.device), mirror, dx, dy, "reflect")
            values.append(signal(model.query(images), model.labels(chunk)))
        columns.append(np.concatenate(values))
    return np.stack(columns, axis=1)
