"""pix2pix / CycleGAN networks, losses, the image pool and the training tasks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixelforge.errors import PixelforgeError
from pixelforge.models.translation import (CycleGANConfig, PatchDiscriminator, Pix2PixConfig, UNetGenerator,
                                           cycle_loss, identity_loss)
from pixelforge.registry import create_model, get_entry
from pixelforge.runtime import Runtime
from pixelforge.training.translation import (CycleGANTask, CycleGANTrainConfig, ImagePool, Pix2PixTask,
                                             Pix2PixTrainConfig)


@pytest.fixture
def rt():
    return Runtime.create("cpu", "fp32", seed=0)


@pytest.mark.parametrize("h,w", [(32, 32), (28, 28), (37, 50), (9, 70)])
def test_unet_keeps_any_size_and_maps_channels(h, w):
    g = UNetGenerator(1, 3, width=4, depth=3)
    y = g(torch.randn(2, 1, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.abs().max() <= 1  # tanh output


def test_unet_skip_connections_have_matching_sizes():
    g = UNetGenerator(3, 3, width=4, depth=4)
    feats = g.encode(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32]
    ups = []
    hooks = [u.register_forward_hook(lambda m, i, o: ups.append(o.shape)) for u in g.ups]
    g(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    # Each up level lands on the resolution and width of the down level it is concatenated with.
    assert [tuple(s[1:]) for s in ups] == [(16, 8, 8), (8, 16, 16), (4, 32, 32)]


def test_unet_skips_carry_detail_past_the_bottleneck():
    g = UNetGenerator(1, 1, width=4, depth=3).eval()
    x = torch.randn(1, 1, 32, 32)
    base = g(x)
    # Cut the outermost skip: the output changes, so high-resolution input reaches the output by it.
    orig = g.downs[0].forward
    outs = []
    g.downs[0].forward = lambda t: outs.append(orig(t)) or outs[-1]
    assert torch.equal(g(x), base)
    g.downs[0].forward = lambda t: orig(t) * 0
    assert not torch.allclose(g(x), base)


def test_residual_generator_starts_near_the_identity():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 24, 24) * 2 - 1
    g = UNetGenerator(1, 3, width=4, depth=3, residual=True)
    y = g(x)
    assert y.shape == (2, 3, 24, 24)
    assert (y - x.expand(-1, 3, -1, -1)).abs().mean() < 0.05  # the input, broadcast, plus a small change
    assert (UNetGenerator(1, 3, width=4, depth=3)(x) - x).abs().mean() > 0.3
    with pytest.raises(PixelforgeError, match="residual"):
        Pix2PixConfig(in_channels=3, out_channels=1, residual=True)


def test_patchgan_output_grid_and_receptive_field():
    d = PatchDiscriminator(6, width=4, layers=3)
    assert d.receptive_field == 70
    assert d(torch.randn(2, 6, 256, 256)).shape == (2, 1, 30, 30)
    assert d(torch.randn(1, 6, 64, 64)).shape == (1, 1, 6, 6)
    assert PatchDiscriminator(3, 4, layers=1).receptive_field == 16
    with pytest.raises(PixelforgeError, match="too small for a PatchGAN"):
        d(torch.randn(1, 6, 16, 16))


def test_registered_models_and_config_errors():
    assert get_entry("pix2pix").family == "translation" and get_entry("cyclegan").family == "translation"
    p = create_model("pix2pix", in_channels=1, out_channels=3, width=4, depth=3, d_width=4)
    assert p.discriminator.body[0].in_channels == 4  # conditional D sees input and output
    c = create_model("cyclegan", channels_a=1, channels_b=3, width=4, depth=3, d_width=4)
    assert c.g_ab(torch.randn(1, 1, 24, 24)).shape == (1, 3, 24, 24)
    assert c.g_ba(torch.randn(1, 3, 24, 24)).shape == (1, 1, 24, 24)
    with pytest.raises(PixelforgeError, match="1 or 3"):
        Pix2PixConfig(in_channels=2)
    with pytest.raises(PixelforgeError, match="depth"):
        CycleGANConfig(depth=9)
    with pytest.raises(PixelforgeError, match="pairing"):
        Pix2PixTrainConfig(pairs="sepia")
    with pytest.raises(PixelforgeError, match="domain B"):
        CycleGANTrainConfig()


def test_cycle_loss_is_zero_for_identity_generators():
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    assert cycle_loss(nn.Identity(), nn.Identity(), a, b).item() == 0
    assert identity_loss(nn.Identity(), nn.Identity(), a, b).item() == 0
    neg = lambda x: -x  # an invertible pair: the cycle closes although each translation changes the image
    assert cycle_loss(neg, neg, a, b).item() == pytest.approx(0, abs=1e-7)
    assert identity_loss(neg, neg, a, b).item() > 0.5
    half = lambda x: x / 2
    assert cycle_loss(half, half, a, b).item() == pytest.approx(
        (a - a / 4).abs().mean().item() + (b - b / 4).abs().mean().item(), rel=1e-5)
    with pytest.raises(PixelforgeError, match="same number of channels"):
        identity_loss(nn.Identity(), nn.Identity(), a[:, :1], b)


def test_image_pool_semantics():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: the new images come back
    assert len(pool.images) == 3
    second = torch.arange(10.0, 16.0).view(6, 1, 1, 1)
    out = pool.query(second)
    assert out.shape == second.shape and len(pool.images) == 4
    seen = set(first.flatten().tolist()) | set(second.flatten().tolist())
    assert set(out.flatten().tolist()) <= seen
    # Over many queries about half the returned images are older ones from the pool.
    old = 0
    for i in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        old += int(pool.query(new).item() != 100.0 + i)
    assert 60 < old < 140
    state = pool.state()
    restored = ImagePool(4)
    restored.load(state)
    assert torch.equal(torch.cat(restored.images), torch.cat(pool.images))
    assert torch.equal(ImagePool(0).query(second), second)


def _pair_batch():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    img = torch.stack([xx, yy, xx * yy]).clamp(-1, 1)
    return torch.stack([img, img.flip(-1)])


@pytest.mark.parametrize("gan_weight", [0.0, 1.0])
def test_pix2pix_overfits_a_fixed_pair(rt, gan_weight):
    model = create_model("pix2pix", in_channels=1, out_channels=3, width=8, depth=3, d_width=8, d_layers=2)
    task = Pix2PixTask(model, Pix2PixTrainConfig(pairs="gray", crop=0, gan_weight=gan_weight, lr=2e-3), rt)
    assert ("discriminator" in task.optimizers()) == bool(gan_weight)
    batch = _pair_batch()
    first = task.step(batch, None)
    for _ in range(60):
        last = task.step(batch, None)
    assert last["l1"] < 0.5 * first["l1"]
    assert last["psnr"] > first["psnr"] + 3
    a, fake, b = task.last_rows
    assert a.shape[1] == 1 and fake.shape == b.shape == batch.shape


def test_pix2pix_folder_pairs_split_channels(rt):
    model = create_model("pix2pix", in_channels=1, out_channels=3, width=4, depth=3, d_width=4, d_layers=2)
    task = Pix2PixTask(model, Pix2PixTrainConfig(pairs="folder:/x", crop=0), rt)
    batch = torch.cat([torch.zeros(2, 1, 32, 32), torch.ones(2, 3, 32, 32)], 1)
    a, b = task.split(batch)
    assert a.shape == (2, 1, 32, 32) and b.shape == (2, 3, 32, 32) and b.min() == 1


def test_cyclegan_step_losses_decrease_and_pool_fills(rt):
    torch.manual_seed(0)
    model = create_model("cyclegan", channels_a=1, channels_b=1, width=8, depth=3, d_width=8, d_layers=2)

    def smooth(n):
        return torch.nn.functional.interpolate(torch.rand(n, 1, 6, 6), size=(24, 24), mode="bilinear")

    b_images = (smooth(8) * 255).to(torch.uint8)
    task = CycleGANTask(model, CycleGANTrainConfig(b_data="x", pool_size=5, lr=2e-3), rt, b_images)
    a = smooth(4) * 2 - 1
    first = task.step(a, None)
    for _ in range(40):
        last = task.step(a, None)
    assert set(last) == {"d_loss", "g_adv", "cycle", "identity"}
    assert last["cycle"] < 0.5 * first["cycle"] and last["identity"] < 0.5 * first["identity"]
    assert len(task.pool_a.images) == 5 and len(task.pool_b.images) == 5
    state = task.extra_state()
    assert state["pool_a"].shape == (5, 1, 24, 24)


def test_cyclegan_identity_needs_equal_channels(rt):
    model = create_model("cyclegan", channels_a=1, channels_b=3, width=4, depth=3, d_width=4, d_layers=2)
    b_images = torch.zeros(2, 3, 24, 24, dtype=torch.uint8)
    with pytest.raises(PixelforgeError, match="--lambda-id 0"):
        CycleGANTask(model, CycleGANTrainConfig(b_data="x"), rt, b_images)
    task = CycleGANTask(model, CycleGANTrainConfig(b_data="x", lambda_id=0), rt, b_images)
    assert task.step(torch.zeros(2, 1, 24, 24), None)["identity"] == 0
    with pytest.raises(PixelforgeError, match="empty"):
        CycleGANTask(model, CycleGANTrainConfig(b_data="x", lambda_id=0), rt, b_images[:0])
