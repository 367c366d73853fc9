"""The per-sample random crop (zero padding) and horizontal flip of the image datasets."""

import torch

from mibench_plugins.datasets.augment import crop_flip, random_crop_flip


def ramp(n=1, c=2, h=5, w=6):
    """Images whose every pixel is distinct and non-zero: pixel value = 1 + its flat index."""
    return (torch.arange(n * c * h * w, dtype=torch.float32) + 1).view(n, c, h, w)


def shifted(image, dy, dx):
    """``image`` (C x H x W) with its content moved dy down and dx right, zeros where nothing lands."""
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_a_crop_moves_the_content_by_its_offset_and_pads_with_zeros():
    x = ramp(n=4)[:1].expand(4, -1, -1, -1)
    offsets = torch.tensor([[2, 2], [0, 0], [4, 1], [3, 4]])  # padding 2: (2, 2) is the identity
    out = crop_flip(x, offsets, torch.zeros(4, dtype=torch.bool), padding=2)
    assert out.shape == x.shape
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], shifted(x[0], 2, 2))
    assert out[1, :, :2].eq(0).all() and out[1, :, :, :2].eq(0).all()  # the padding is zeros
    assert torch.equal(out[2], shifted(x[0], -2, 1))
    assert torch.equal(out[3], shifted(x[0], -1, -2))


def test_flip_mirrors_the_crop_left_to_right():
    x = ramp(n=2)
    offsets = torch.tensor([[2, 2], [1, 3]])
    out = crop_flip(x, offsets, torch.tensor([True, True]), padding=2)
    assert torch.equal(out[0], x[0].flip(-1))
    assert torch.equal(out[1], shifted(x[1], 1, -1).flip(-1))


def matches(out, image, padding):
    """The (dy, dx, flip) that turn ``image`` into ``out``."""
    found = []
    for dy in range(-padding, padding + 1):
        for dx in range(-padding, padding + 1):
            for flip in (False, True):
                candidate = shifted(image, dy, dx)
                if torch.equal(out, candidate.flip(-1) if flip else candidate):
                    found.append((dy, dx, flip))
    return found


def test_random_crop_flip_is_per_sample_and_seeded():
    x = ramp(n=1, c=3, h=8, w=8).expand(200, -1, -1, -1).contiguous()
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    draws = [matches(out[i], x[0], 4) for i in range(len(out))]
    assert all(len(d) == 1 for d in draws)  # every sample is one shift of the image, maybe flipped
    draws = [d[0] for d in draws]
    assert {flip for _, _, flip in draws} == {False, True}
    assert {dy for dy, _, _ in draws} == set(range(-4, 5)) and {dx for _, dx, _ in draws} == set(range(-4, 5))
    assert torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(1)))


def test_random_crop_flip_keeps_the_batch_on_its_device_and_leaves_it_alone():
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    before = x.clone()
    out = random_crop_flip(x, torch.Generator().manual_seed(5))
    assert out.device == x.device and out.dtype == torch.float64 and torch.equal(x, before)
