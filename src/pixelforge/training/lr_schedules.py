"""Learning-rate factors over the share of the training budget used (``progress`` in [0, 1],
from :meth:`Trainer._fraction_done`); each task multiplies its base rate by one of them."""

from __future__ import annotations

import math


def cosine_lr(progress: float, warmup: float, floor: float) -> float:
    """Linear ramp floor -> 1 over ``warmup``, then a cosine down to ``floor``."""
    if progress < warmup:
        return floor + (1 - floor) * progress / warmup
    t = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def one_cycle(progress: float, warmup: float) -> float:
    """Linear ramp 0.04 -> 1 over ``warmup``, then a cosine to 0."""
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    t = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return 0.5 * (1 + math.cos(math.pi * t))


def cooldown(progress: float, share: float) -> float:
    """1 until the last ``share`` of the budget, then linearly to 0 at its end (0: constant).

    A constant rate with a linear cool-down at the end trains about as well as a cosine over
    the whole budget, and until the cool-down starts the run can be continued as if it were
    longer (Hägele et al. 2024, "Scaling laws and compute-optimal training beyond fixed
    training durations")."""
    if share <= 0 or progress <= 1 - share:
        return 1.0
    return max(0.0, (1 - progress) / share)
