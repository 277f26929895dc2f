"""Building blocks shared by the model families."""

from .augment import diff_augment
from .ema import EMA

__all__ = ["EMA", "diff_augment"]
