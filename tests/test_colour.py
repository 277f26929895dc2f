"""Colour spaces and sliced-optimal-transport colour transfer."""

import torch

from pixelforge.colour import luminance, quantile_map, rgb_to_ycbcr, transfer_colours, ycbcr_to_rgb


def _gradient(h=48, w=64):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([xx, yy, (xx + yy) / 2])


def test_ycbcr_round_trip_and_luminance():
    rgb = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    grey = torch.full((3, 4, 4), 0.3)
    assert torch.allclose(luminance(grey), torch.full((1, 4, 4), 0.3))


def test_transfer_takes_the_references_colours_and_keeps_the_images_order():
    image = _gradient()
    generator = torch.Generator().manual_seed(1)
    # A reference with other colours: reddish, narrow green and blue ranges.
    reference = torch.stack([0.6 + 0.4 * torch.rand(40, 40, generator=generator),
                             0.2 * torch.rand(40, 40, generator=generator),
                             0.3 + 0.1 * torch.rand(40, 40, generator=generator)])
    out = transfer_colours(image, [reference])
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
    for channel in range(3):
        mine, theirs = out[channel].flatten().sort().values, reference[channel].flatten()
        quantiles = torch.quantile(theirs, torch.linspace(0, 1, mine.numel()))
        assert (mine - quantiles).abs().mean() < 0.02, channel  # the reference's histogram
    # The content survives: the brightness order of the pixels is largely kept.
    before, after = luminance(image).flatten(), luminance(out).flatten()
    ranks = torch.stack([before.argsort().argsort(), after.argsort().argsort()]).float()
    assert torch.corrcoef(ranks)[0, 1] > 0.9


def test_transfer_mixes_references_by_weight():
    image = _gradient()
    black, white = torch.zeros(3, 16, 16), torch.ones(3, 16, 16)
    mostly_white = transfer_colours(image, [black, white], [0.25, 0.75])
    assert abs(mostly_white.mean().item() - 0.75) < 0.05
    only_black = transfer_colours(image, [black, white], [1.0, 0.0])
    assert only_black.max() < 1e-6


def test_quantile_map_gives_the_references_distribution_in_the_values_order():
    torch.manual_seed(0)
    values = torch.rand(2, 2, 5000) ** 2
    reference = torch.randn(1, 2, 3000) * 0.1 + 0.4
    out = quantile_map(values, reference)
    levels = torch.linspace(0.02, 0.98, 25)
    torch.testing.assert_close(out.quantile(levels, dim=-1), reference.expand(2, -1, -1).quantile(levels, dim=-1),
                               atol=0.01, rtol=0)
    order = values.argsort(-1)
    assert (out.gather(-1, order).diff(dim=-1) >= -1e-6).all()  # increasing in the values
    values[:, :, :500] = 0.25  # a flat region: its pixels stay equal (a sort would spread them over a range)
    flat = quantile_map(values, reference)
    assert (flat[:, :, :500] == flat[:, :, :1]).all()
    constant = quantile_map(torch.full((1, 1, 100), 0.3), reference[:, :1])  # one value: one output value
    assert torch.isfinite(constant).all() and (constant == constant[..., :1]).all()
