import pytest

from pixelforge.training.lr_schedules import cooldown


def test_cooldown_holds_then_falls_linearly_to_zero():
    assert cooldown(0.0, 0.3) == 1 and cooldown(0.7, 0.3) == 1
    assert cooldown(0.85, 0.3) == pytest.approx(0.5) and cooldown(1.0, 0.3) == 0
    # pix2pix / CycleGAN's schedule: constant for half the budget, then linearly to 0
    assert cooldown(0.5, 0.5) == 1 and cooldown(0.75, 0.5) == pytest.approx(0.5)


def test_no_cooldown_is_constant():
    assert all(cooldown(p, 0.0) == 1 for p in (0.0, 0.5, 0.99, 1.0))
