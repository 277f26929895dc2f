"""Building blocks shared by the model families."""

import contextlib

from torch import nn

from .augment import diff_augment
from .ema import EMA
from .memory_format import grad_like_input, like_weights
from .norm import GroupNorm

__all__ = ["EMA", "GroupNorm", "diff_augment", "grad_like_input", "like_weights", "no_sync_unless"]


def no_sync_unless(module: nn.Module, sync: bool):
    """DDP's ``no_sync()`` (skip the gradient all-reduce) for all but the last micro-batch."""
    if sync or not hasattr(module, "no_sync"):
        return contextlib.nullcontext()
    return module.no_sync()
