"""The style-transfer measures of pixelforge.metrics.style on tiny synthetic images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelforge.metrics.style import (
    MaxPoolFeatures,
    colour_histogram_distance,
    edge_agreement,
    gram_distance,
    luminance_ssim,
    sliced_wasserstein_distance,
    style_judges,
)
from pixelforge.models.style import RandomFeatures
from tests.synthetic import synthetic_photo


def photo(size: int = 48, seed: int = 0) -> torch.Tensor:
    array = synthetic_photo(np.random.default_rng(seed), size, size)
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255


def texture(size: int = 48, seed: int = 1) -> torch.Tensor:
    """Coloured blotchy noise: no photo layout, other colours, other statistics."""
    noise = torch.rand(1, 3, size // 4, size // 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(size, size), mode="nearest")[0] * torch.tensor([0.9, 0.2, 0.6]).view(3, 1, 1)


@pytest.fixture(scope="module")
def judges():
    return style_judges()


def test_identical_images_are_perfect_on_every_measure(judges):
    x = photo()
    assert luminance_ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert edge_agreement(x, x).item() == 1.0
    assert gram_distance(x, x, judges, side=None).item() == pytest.approx(0.0, abs=1e-5)
    assert sliced_wasserstein_distance(x, x, judges, side=None).item() == pytest.approx(0.0, abs=1e-5)
    assert colour_histogram_distance(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_blur_and_noise_lower_content_preservation():
    x = photo(64)
    blurred = F.avg_pool2d(x[None], 5, stride=1, padding=2, count_include_pad=False)[0]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    grainy, noisy = (x + 0.1 * noise).clamp(0, 1), (x + 0.25 * noise).clamp(0, 1)
    assert luminance_ssim(blurred, x).item() < 0.9
    assert luminance_ssim(noisy, x).item() < luminance_ssim(grainy, x).item() < 0.9
    # The edge maps are taken after a blur, so grain barely moves them; strong noise and blur do.
    assert edge_agreement(noisy, x).item() < edge_agreement(grainy, x).item()
    assert edge_agreement(noisy, x).item() < 0.95 and edge_agreement(blurred, x).item() < 0.95


def test_content_measures_resize_the_result_and_work_per_image():
    x = photo(64)
    batch = torch.stack([x, photo(64, seed=5)])
    half = F.interpolate(batch, size=(32, 32), mode="bilinear", antialias=True)
    values = luminance_ssim(half, x)
    assert values.shape == (2,) and values[0] > values[1]
    edges = edge_agreement(half, x)
    assert edges.shape == (2,) and edges[0] > edges[1]


def test_colour_shift_is_an_earth_movers_distance():
    x = photo() * 0.8
    assert colour_histogram_distance(x + 0.1, x, side=None).item() == pytest.approx(0.1, abs=1e-5)
    redder = x.clone()
    redder[0] = (redder[0] + 0.3).clamp(max=1)
    assert colour_histogram_distance(redder, x).item() > colour_histogram_distance(x, x).item() + 0.05
    assert luminance_ssim(x + 0.1, x).item() > 0.95  # a colour change is not a loss of content


def test_judges_are_seeded_and_not_the_methods_backbone(judges):
    assert [j.name for j in judges] == ["offline", "offline", "maxpool"]
    x = photo(32)[None]
    again = RandomFeatures(seed=101)
    torch.testing.assert_close(judges[0](x)["r3"], again(x)["r3"])
    torch.testing.assert_close(MaxPoolFeatures()(x)["m4"], judges[2](x)["m4"])
    method = RandomFeatures(seed=0)(x)
    for judge in judges[:2]:
        assert not torch.allclose(judge(x)["r1"], method["r1"])
    assert style_judges()[0] is judges[0]  # built once


def test_a_photo_is_closer_to_its_mirror_image_than_to_a_texture(judges):
    x, t = photo(), texture()
    mirror = x.flip(-1)
    assert gram_distance(mirror, x, judges, side=None) < 0.5 * gram_distance(t, x, judges, side=None)
    assert sliced_wasserstein_distance(mirror, x, judges, side=None) < \
        0.5 * sliced_wasserstein_distance(t, x, judges, side=None)
    assert colour_histogram_distance(mirror, x) < colour_histogram_distance(t, x)


def test_style_measures_take_images_of_different_sizes(judges):
    x = photo(64)
    results = torch.stack([x[:, :, :48], texture(64)[:, :, :48]])  # 64 x 48, batch of two
    for measure in (gram_distance, sliced_wasserstein_distance):
        values = measure(results, x, judges, side=40)
        assert values.shape == (2,) and values[0] < values[1]
