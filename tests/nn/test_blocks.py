import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.nn import EMA, diff_augment


def test_ema_is_a_lerp_towards_the_model():
    model = torch.nn.Linear(3, 1)
    ema = EMA(model, decay=0.9, warmup=False)
    start = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.9 * start + 0.1 * model.weight)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_warmup_ramps_decay():
    ema = EMA(torch.nn.Linear(1, 1), decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)
    ema.num_updates = 10_000
    assert ema.current_decay() == pytest.approx(0.999)


def test_diffaug_shapes_and_gradients():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cutout_zeroes_a_quarter():
    torch.manual_seed(0)
    y = diff_augment(torch.ones(32, 1, 16, 16), "cutout")
    zero_fraction = (y == 0).float().mean().item()
    assert 0.15 < zero_fraction <= 0.25  # an 8x8 square, clipped at the borders


def test_translation_moves_content():
    torch.manual_seed(0)
    x = torch.zeros(16, 1, 16, 16)
    x[:, :, 8, 8] = 1
    y = diff_augment(x, "translation")
    assert torch.all(y.sum(dim=(1, 2, 3)) <= 1)
    moved = (y[:, 0, 8, 8] == 0).sum().item()
    assert moved > 8  # most samples shifted


def test_unknown_policy():
    with pytest.raises(PixelforgeError, match="DiffAugment"):
        diff_augment(torch.zeros(1, 1, 4, 4), "rotate")


def test_crop_shifts_at_most_two_pixels_at_28():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1
    y = diff_augment(x, "crop")
    pos = y.flatten(1).argmax(1)
    dy, dx = pos // 28 - 14, pos % 28 - 14
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2 and (dy != 0).any()


@pytest.mark.parametrize("policy", ["translation", "crop", "cutout"])
def test_what_a_change_uncovers_takes_the_background(policy):
    torch.manual_seed(0)
    x = torch.ones(32, 1, 16, 16)
    y = diff_augment(x, policy, background=-1.0)
    assert set(y.unique().tolist()) == {-1.0, 1.0}  # nothing mid-grey
    assert set(diff_augment(x, policy).unique().tolist()) == {0.0, 1.0}  # DiffAugment's own fill
