"""Keeping activations and their gradients in one memory format.

oneDNN's element-wise backward kernels (ReLU, LeakyReLU, batch norm) are vectorised only when
the gradient and the saved activation share a memory format; with one in channels_last and
the other in NCHW they fall back to a strided loop (a LeakyReLU backward 16x slower,
benchmarks/profiling.py --probes). Mixed formats arise where a network leaves the
convolutional world (``flatten`` before a linear head gives an NCHW gradient) or enters it (a
linear projection ``view``-ed to an NCHW map). These helpers put such tensors, and their
gradients, in the format of the surrounding convolutions.
"""

from __future__ import annotations

import torch
from torch import nn


def is_channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def like_weights(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """``x`` in channels_last when ``conv``'s weight is (the runtime made the module so)."""
    if is_channels_last(conv.weight) and not is_channels_last(x):
        return x.contiguous(memory_format=torch.channels_last)
    return x


class _GradLikeInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.channels_last = is_channels_last(x)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        if ctx.channels_last:
            return grad.contiguous(memory_format=torch.channels_last)
        return grad


def grad_like_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself, whose gradient is given back in ``x``'s memory format (use before a
    ``flatten`` or ``view`` that would hand back an NCHW gradient to channels_last layers)."""
    return _GradLikeInput.apply(x) if x.requires_grad and is_channels_last(x) else x


def reflection_pad_channels_last(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4, mode="reflect")`` for a channels_last map, built in a channels_last buffer.
    torch's reflection padding converts such a map to NCHW and back (about 8 ms for a 32-channel 544 x 544
    bf16 map here, against 1 ms this way)."""
    n, c, h, w = x.shape
    out = torch.empty((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    out[:, :, pad:-pad, pad:-pad] = x
    out[:, :, pad:-pad, :pad] = x[:, :, :, 1:pad + 1].flip(-1)
    out[:, :, pad:-pad, -pad:] = x[:, :, :, -pad - 1:-1].flip(-1)
    out[:, :, :pad] = out[:, :, pad + 1:2 * pad + 1].flip(-2)
    out[:, :, -pad:] = out[:, :, -2 * pad - 1:-pad - 1].flip(-2)
    return out


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` (the same padding on every side) that keeps a channels_last map so at inference
    (:func:`reflection_pad_channels_last`); with gradients, in an ONNX export or in NCHW it is torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.padding[0]
        if (is_channels_last(x) and len(set(self.padding)) == 1 and 0 < pad < min(x.shape[-2:])
                and not (torch.is_grad_enabled() and x.requires_grad) and not torch.onnx.is_in_onnx_export()):
            return reflection_pad_channels_last(x, pad)
        return super().forward(x)
