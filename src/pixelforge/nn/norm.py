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
            nchw = grad_like_input(x).contiguous()
            if x.dtype == torch.bfloat16:
                # bf16 in and out: autocast would compute the norm on an fp32 copy and hand fp32 maps
                # to the activation and convolution after it. PyTorch's CPU kernel keeps its
                # statistics in fp32 for bf16 input, so only the output's rounding differs.
                with torch.autocast("cpu", enabled=False):
                    y = F.group_norm(nchw, self.num_groups, self.weight, self.bias, self.eps)
            else:
                y = F.group_norm(nchw, self.num_groups, self.weight, self.bias, self.eps)
            return y.to(dtype=x.dtype, memory_format=torch.channels_last)
        return super().forward(x)
