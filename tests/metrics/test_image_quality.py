"""PSNR and SSIM per image."""

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.metrics import psnr, ssim


def test_psnr_of_a_constant_error_of_a_tenth_is_20_db():
    target = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8
    values = psnr(target + 0.1, target, data_range=1.0)
    assert values.shape == (3,)
    torch.testing.assert_close(values, torch.full((3,), 20.0), rtol=0, atol=1e-4)


def test_psnr_is_per_image():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] += 0.1
    pred[1] += 0.01
    torch.testing.assert_close(psnr(pred, target), torch.tensor([20.0, 40.0]), rtol=0, atol=1e-3)


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    images = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ssim(images, images), torch.ones(4))
    noisy = (images + 0.3 * torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    values = ssim(noisy, images)
    assert values.shape == (4,) and (values < 0.9).all()


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_shape_mismatch_and_integer_images_are_refused(metric):
    with pytest.raises(PixelforgeError, match="differ in shape"):
        metric(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 15))
    with pytest.raises(PixelforgeError, match="must be a float tensor.*x.float\\(\\) / 255"):
        metric(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), torch.zeros(2, 1, 16, 16, dtype=torch.uint8))


def test_ssim_refuses_images_smaller_than_its_padding():
    with pytest.raises(PixelforgeError, match="at least 6x6"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5))
