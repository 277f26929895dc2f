"""Super-resolution networks, the degradation, the training task and tiled inference."""

import copy

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.models.sr import downscale, upscale_bicubic
from pixelforge.pipelines.sr import SRPipeline
from pixelforge.registry import create_model, list_models
from pixelforge.runtime import Runtime, cpu_supports_bf16
from pixelforge.training.lr_schedules import cosine_lr
from pixelforge.training.sr import SRTask, SRTrainConfig, patches


def _randomised(name, **cfg):
    """A network whose output layer is not zero, so it differs from bicubic everywhere."""
    torch.manual_seed(0)
    net = create_model(name, width=8, **({"blocks": 2} if name == "edsr" else {}), **cfg)
    with torch.no_grad():
        net.to_pixels.weight.normal_(0, 0.05)
        net.to_pixels.bias.normal_(0, 0.01)
    return net.eval()


def test_both_families_registered():
    assert list_models(family="sr") == ["edsr", "espcn"]


@pytest.mark.parametrize("name", ["espcn", "edsr"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(name, scale, channels):
    net = create_model(name, scale=scale, channels=channels, width=8, blocks=1)
    assert net(torch.rand(2, channels, 12, 10)).shape == (2, channels, 12 * scale, 10 * scale)


@pytest.mark.parametrize("name", ["espcn", "edsr"])
def test_untrained_residual_network_is_bicubic(name):
    x = torch.rand(1, 3, 16, 16)
    net = create_model(name, scale=2, width=8, blocks=1)
    torch.testing.assert_close(net(x), upscale_bicubic(x, 2))


@pytest.mark.parametrize("name", ["espcn", "edsr"])
def test_receptive_radius_bounds_the_influence_of_a_pixel(name):
    net = _randomised(name, scale=2)
    x = torch.rand(1, 3, 40, 40)
    y = x.clone()
    y[0, :, 20, 20] += 0.5
    changed = (net(x) - net(y)).abs().amax(dim=(0, 1)) > 0
    rows = changed.any(1).nonzero().flatten()
    r = net.receptive_radius
    assert rows.min() >= (20 - r) * 2 and rows.max() < (21 + r) * 2
    assert changed[(20 - r + 1) * 2:(21 + r - 1) * 2].any()  # the bound is close, not loose


@pytest.mark.parametrize("bad", [dict(scale=5), dict(channels=2), dict(width=2)])
def test_bad_config(bad):
    with pytest.raises(PixelforgeError):
        create_model("edsr", **bad)


def test_downscale_is_antialiased_bicubic():
    hr = torch.rand(2, 3, 16, 24)
    lr = downscale(hr, 4)
    assert lr.shape == (2, 3, 4, 6) and lr.min() >= 0 and lr.max() <= 1
    flat = torch.full((1, 1, 8, 8), 0.3)
    torch.testing.assert_close(downscale(flat, 2), torch.full((1, 1, 4, 4), 0.3))
    # Antialiasing averages a one-pixel checkerboard away (plain bicubic sampling would alias it).
    checker = (torch.arange(16).view(1, -1) + torch.arange(16).view(-1, 1)) % 2
    assert downscale(checker.float().view(1, 1, 16, 16), 4).std() < 0.05
    with pytest.raises(PixelforgeError, match="multiple of scale"):
        downscale(torch.rand(1, 3, 10, 10), 4)


def test_patches_cover_every_crop():
    images = torch.arange(2 * 100 * 70, dtype=torch.float32).view(2, 1, 100, 70)
    p = patches(images, 30)
    assert p.shape[1:] == (1, 60, 60) and len(p) == 2 * 4 * 2  # rows 0, 15, 30, 40; columns 0, 10
    assert torch.equal(p[2], images[0, :, 0:60, 10:70])  # (row, column) major, then the image
    with pytest.raises(PixelforgeError, match="smaller than"):
        patches(torch.zeros(1, 3, 20, 20, dtype=torch.uint8), 32)


def test_cosine_schedule():
    assert cosine_lr(0.0, 0.1, 0.02) == pytest.approx(0.02)
    assert cosine_lr(0.1, 0.1, 0.02) == pytest.approx(1.0)
    assert cosine_lr(1.0, 0.1, 0.02) == pytest.approx(0.02)


def test_task_learns_to_beat_bicubic():
    """Sharp-edged shapes: after 60 steps the network beats bicubic on its crops by 0.3 dB or more."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    imgs = []
    for i in range(16):
        cy, cx, r = torch.randint(10, 38, (3,)).tolist()
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r // 2 + 4) ** 2).float()
        stripes = ((xx + i) // 3 % 2).float()
        imgs.append(torch.stack([disc, stripes * 0.5 + 0.25, 1 - disc]))
    images = torch.stack(imgs) * 2 - 1
    task = SRTask(create_model("espcn", scale=2, width=16), SRTrainConfig(crop=32, lr=3e-3, warmup=0.0),
                  Runtime.create("cpu", "fp32"))
    gains = []
    for step in range(60):
        task.set_progress(step / 60)
        gains.append(task.step(images, None)["psnr_gain"])
    assert sum(gains[-10:]) / 10 > 0.3 > abs(gains[0])
    assert set(task.modules()) == {"sr"}


def test_crop_must_be_a_multiple_of_the_scale():
    with pytest.raises(PixelforgeError, match="multiple of scale"):
        SRTask(create_model("espcn", scale=4, width=8), SRTrainConfig(crop=30), Runtime.create("cpu", "fp32"))
    with pytest.raises(PixelforgeError, match="loss"):
        SRTrainConfig(loss="l3")


# -- tiled inference ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["espcn", "edsr"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_tiled_equals_untiled(name, channels):
    pipe = SRPipeline(_randomised(name, scale=2), create_model(name, scale=2, width=8, blocks=2).cfg,
                      precision="fp32")
    x = torch.rand(channels, 45, 70)
    whole = pipe.upscale_tensor(x, tile=1000)
    tiled = pipe.upscale_tensor(x, tile=16)
    assert whole.shape == (channels, 90, 140)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    # ... and untiled is the network applied to the whole image at once (clamped).
    if channels == 3:
        torch.testing.assert_close(whole, pipe.net(x[None])[0].clamp(0, 1), atol=1e-5, rtol=0)
    if channels == 4:  # alpha is upscaled bicubically, not by the network
        torch.testing.assert_close(whole[3], upscale_bicubic(x[None, 3:], 2)[0, 0].clamp(0, 1), atol=1e-5, rtol=0)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_bf16_inference_stays_within_an_8bit_level_of_fp32():
    net = _randomised("edsr", scale=2)
    x = torch.rand(3, 45, 70)
    fast = SRPipeline(net, net.cfg)  # auto: bf16 autocast, channels_last
    assert fast.runtime.precision == "bf16" and fast.runtime.channels_last
    exact = SRPipeline(copy.deepcopy(net), net.cfg, precision="fp32").upscale_tensor(x)
    diff = (fast.upscale_tensor(x, tile=16) - exact).abs()
    assert 0 < diff.max() < 1 / 255  # bf16 did run, and the fp32 sum with bicubic keeps it small


def test_gray_through_rgb_network_and_rgb_through_gray_network():
    rgb_net = _randomised("edsr", scale=2)
    pipe = SRPipeline(rgb_net, rgb_net.cfg, precision="fp32")
    g = torch.rand(1, 20, 24)
    out = pipe.upscale_tensor(g)
    torch.testing.assert_close(out[0], rgb_net(g.expand(3, -1, -1)[None])[0].mean(0).clamp(0, 1))
    gray_net = _randomised("espcn", scale=2, channels=1)
    pipe = SRPipeline(gray_net, gray_net.cfg, precision="fp32")
    x = torch.rand(3, 20, 24)
    out = pipe.upscale_tensor(x)
    torch.testing.assert_close(out[1], gray_net(x[None, 1:2])[0, 0].clamp(0, 1))


def test_tiling_errors():
    net = _randomised("espcn", scale=4)
    pipe = SRPipeline(net, net.cfg)
    with pytest.raises(PixelforgeError, match="smaller than one tile"):
        pipe.upscale_tensor(torch.rand(3, 10, 40))
    with pytest.raises(PixelforgeError, match="x4, not x2"):
        pipe.upscale_tensor(torch.rand(3, 20, 20), scale=2)
    with pytest.raises(PixelforgeError, match="above the limit"):
        pipe.upscale_tensor(torch.rand(3, 100, 100), max_pixels=100_000)
    with pytest.raises(PixelforgeError, match="tile must be"):
        pipe.upscale_tensor(torch.rand(3, 20, 20), tile=8)
    with pytest.raises(PixelforgeError, match="1-4 channels"):
        pipe.upscale_tensor(torch.rand(5, 20, 20))


def test_uint8_output_buffer_matches_float():
    net = _randomised("edsr", scale=2)
    pipe = SRPipeline(net, net.cfg)
    x = torch.rand(3, 33, 41)
    buf = torch.empty(66, 82, 3, dtype=torch.uint8)
    pipe.upscale_tensor(x, tile=16, out=buf)
    ref = pipe.upscale_tensor(x).permute(1, 2, 0).mul(255).round().to(torch.uint8)
    assert (buf.int() - ref.int()).abs().max() <= 1
