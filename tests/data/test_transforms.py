"""Tensor conversions: value range mapping, channels and resizing."""

import numpy as np
import torch
from PIL import Image

from pixelforge.data import convert_channels, resize_images, to_float, to_uint8


def test_to_float_and_back():
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = to_float(images)
    assert x.dtype == torch.float32 and x.min() == -1.0 and x.max() == 1.0
    assert torch.equal(to_uint8(x), images)
    assert to_uint8(torch.tensor([-3.0, 0.0, 5.0])).tolist() == [0, 128, 255]


def test_rgb_to_gray_matches_pil():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    gray = convert_channels(torch.from_numpy(rgb).permute(2, 0, 1)[None], 1)
    assert gray.shape == (1, 1, 9, 7)
    np.testing.assert_array_equal(gray[0, 0].numpy(), expected)


def test_gray_to_rgb_repeats():
    gray = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    rgb = convert_channels(gray, 3)
    assert rgb.shape == (2, 3, 4, 4) and all(torch.equal(rgb[:, c], gray[:, 0]) for c in range(3))


def test_resize_scales_shorter_side_then_center_crops():
    images = torch.zeros((3, 1, 20, 40), dtype=torch.uint8)
    images[..., 10:30] = 200  # a bright band in the middle half of the width
    out = resize_images(images, 10)
    assert out.shape == (3, 1, 10, 10) and out.dtype == torch.uint8
    # 20x40 -> 10x20, crop columns 5..14 = the bright band 5..14 exactly.
    assert (out[..., 1:-1] == 200).all()


def test_resize_in_batches_matches_one_batch(monkeypatch):
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    whole = resize_images(images, 32)
    monkeypatch.setattr("pixelforge.data.transforms.RESIZE_BATCH_ELEMENTS", 1)
    assert torch.equal(resize_images(images, 32), whole)
    assert torch.equal(resize_images(images, 28), images)
