"""Normalisation layers tuned for the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .memory_format import grad_like_input, is_channels_last


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that normalises channels_last activations in NCHW on the CPU.

    PyTorch's CPU group norm is several times slower on channels_last tensors than on NCHW ones
    (measured on this project's 2-core build machine: 40% of a diffusion U-Net's forward pass in
    bf16), while oneDNN's convolutions want channels_last. Converting around the norm costs two
    cheap copies; the gradient is handed back in channels_last too, since a gradient in the other
    format slows every element-wise backward kernel it meets (see :mod:`.memory_format`).
    Same parameters and state-dict keys as ``nn.GroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and is_channels_last(x):
            y = F.group_norm(grad_like_input(x).contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            # Back in the input's precision too: autocast computes the norm in fp32, and the
            # activation and convolution after it would otherwise run on (and cast) fp32 maps.
            return y.to(dtype=x.dtype, memory_format=torch.channels_last)
        return super().forward(x)
