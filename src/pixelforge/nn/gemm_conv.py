"""Strided convolutions with small maps as matrix products, for bf16 training on the CPU.

A convolution is a matrix product in disguise: unfold the input into one row per output
position holding the patch under the kernel ("im2col"), and the output is those rows times the
weight matrix; the weight gradient is the output gradients times the same rows, and the input
gradient the output gradients times the weight matrix, folded back onto the image with the
overlapping patches added up ("col2im"). oneDNN's bf16 kernels for DCGAN's strided 4x4 layers
run far below the machine's matrix-product rate when the maps are small (the weight gradient at
4x4 to 8x8 outputs at a tenth to a third of it, where one product reaches two thirds; the
figures are in docs/performance.md, from ``benchmarks/profiling.py --probes``), so:

- up to :data:`WEIGHT_GRAD_POSITIONS` output positions per image (8x8), the weight gradient is
  one product (:func:`conv_weight_grad`); the forward pass and the input gradient stay oneDNN's;
- up to :data:`FULL_POSITIONS` (4x4), all three are products (:func:`im2col`, :func:`col2im`).

A transposed convolution is the input gradient of the convolution that goes the other way, so
the same holds for it with its input's map in place of the output's. For larger maps, and for
the U-Net's stride-1 3x3 layers, oneDNN's kernels are as fast or faster (measured), and keep them.

:func:`use_gemm_convolutions` switches a model's plain ``Conv2d``/``ConvTranspose2d`` layers
over (the runtime does it for bf16 on the CPU); they take these paths only under CPU bf16
autocast while gradients are recorded for their weights, and are ordinary layers otherwise (same
parameters, same checkpoints). Spectral-norm layers (a parametrized class) are left as they are.
A backward pass that a gradient penalty (R1, WGAN-GP) differentiates again is oneDNN's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_GRAD_POSITIONS = 64  # output positions per image up to which the weight gradient is one product
FULL_POSITIONS = 16  # ... and up to which the forward pass and the input gradient are products too


def im2col(x: torch.Tensor, kernel, stride, padding, out_hw) -> torch.Tensor:
    """One row per image and output position, holding the (zero-padded) input patch under the
    kernel, ordered kernel row, kernel column, channel: shape (N * Ho * Wo, kh * kw * C)."""
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph)).contiguous()  # NHWC with a zero border
    s_n, s_h, s_w, s_c = padded.stride()
    patches = padded.as_strided((n, ho, wo, kh, kw, c), (s_n, sh * s_h, sw * s_w, s_h, s_w, s_c))
    return patches.reshape(n * ho * wo, kh * kw * c)


def col2im(cols: torch.Tensor, n: int, out_hw, kernel, stride, padding, in_hw) -> torch.Tensor:
    """The reverse of :func:`im2col`: each row's patch added back onto an ``in_hw`` map at its
    place (overlaps summed in fp32), as an N x C x H x W tensor laid out channels_last (a tensor
    of its own, not a view: a layer's output must be changeable in place)."""
    (ho, wo), (kh, kw), (sh, sw), (ph, pw), (h, w) = out_hw, kernel, stride, padding, in_hw
    c = cols.shape[1] // (kh * kw)
    canvas = cols.new_zeros(n, max(h + 2 * ph, sh * (ho - 1) + kh), max(w + 2 * pw, sw * (wo - 1) + kw), c,
                            dtype=torch.float32)
    patches = cols.view(n, ho, wo, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            canvas[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += patches[:, :, :, i, j]
    out = torch.empty((n, c, h, w), dtype=cols.dtype, device=cols.device, memory_format=torch.channels_last)
    return out.copy_(canvas[:, ph:ph + h, pw:pw + w].permute(0, 3, 1, 2))


def conv_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """The gradient of ``conv2d(x, w, stride=stride, padding=padding)``'s weight ``w`` (shape
    ``out x in x kh x kw``, laid out channels_last) given the output's gradient ``grad_out``."""
    patches = im2col(x, kernel, stride, padding, grad_out.shape[-2:])
    return _from_rows(as_rows(grad_out).t() @ patches, kernel, x.shape[1])


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """An N x C x H x W map as (N * H * W) x C rows (free for channels_last)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A (first x second x kh x kw) weight as a first x (kh * kw * second) matrix, im2col's order."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _from_rows(matrix: torch.Tensor, kernel, channels: int) -> torch.Tensor:
    """The reverse of :func:`weight_matrix`."""
    return matrix.view(-1, *kernel, channels).permute(0, 3, 1, 2)


class _GemmConv(torch.autograd.Function):
    """conv2d (or, with ``transposed``, conv_transpose2d) with the paths of the module docstring;
    ``full`` selects products for the forward pass and the input gradient as well."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, transposed, full):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, output_padding, transposed, full, bias is not None)
        kernel, n = tuple(weight.shape[-2:]), x.shape[0]
        if not full:
            if transposed:
                return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)
            return F.conv2d(x, weight, bias, stride, padding)
        if transposed:  # the input gradient of the convolution from this output back to x
            out_hw = [(s - 1) * st - 2 * p + k + op
                      for s, st, p, k, op in zip(x.shape[-2:], stride, padding, kernel, output_padding)]
            y = col2im(as_rows(x) @ weight_matrix(weight), n, x.shape[-2:], kernel, stride, padding, out_hw)
        else:
            out_hw = [(s + 2 * p - k) // st + 1 for s, st, p, k in zip(x.shape[-2:], stride, padding, kernel)]
            # written into a channels_last tensor of its own: an output that is a view of a tensor made
            # here could not be changed in place by the layer after it (an inplace ReLU, a residual sum)
            y = torch.empty((n, weight.shape[0], *out_hw), dtype=x.dtype, device=x.device,
                            memory_format=torch.channels_last)
            torch.mm(im2col(x, kernel, stride, padding, out_hw), weight_matrix(weight).t(),
                     out=y.permute(0, 2, 3, 1).view(-1, weight.shape[0]))
        return y if bias is None else y.add_(bias.view(1, -1, 1, 1))

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, transposed, full, has_bias = ctx.geometry
        kernel = tuple(weight.shape[-2:])
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if torch.is_grad_enabled():
            # a gradient penalty differentiates this pass (create_graph): oneDNN's, whose derivative torch
            # provides, rather than a second derivative through the unfolding and folding
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, stride, padding, [1, 1], transposed, output_padding, 1,
                [need_x, need_w, False])
        elif transposed:
            # weight (in x out x kh x kw): the convolution from grad_out's map to x's, with x as its output
            if full:
                patches = im2col(grad_out, kernel, stride, padding, x.shape[-2:])
                if need_x:
                    grad_x = (patches @ weight_matrix(weight).t()).view(x.shape[0], *x.shape[-2:], -1)
                    grad_x = grad_x.permute(0, 3, 1, 2)
                if need_w:
                    grad_w = _from_rows(as_rows(x).t() @ patches, kernel, weight.shape[1])
            else:
                if need_x:
                    grad_x = F.conv2d(grad_out, weight, None, stride, padding)
                if need_w:
                    grad_w = conv_weight_grad(grad_out, x, kernel, stride, padding)
        elif full:
            rows = as_rows(grad_out)
            if need_x:
                grad_x = col2im(rows @ weight_matrix(weight), x.shape[0], grad_out.shape[-2:], kernel, stride, padding,
                                x.shape[-2:])
            if need_w:
                grad_w = conv_weight_grad(x, grad_out, kernel, stride, padding)
        else:
            if need_x:
                grad_x = torch.ops.aten.convolution_backward(grad_out, x, weight, None, stride, padding, [1, 1], False,
                                                             [0, 0], 1, [True, False, False])[0]
            if need_w:
                grad_w = conv_weight_grad(x, grad_out, kernel, stride, padding)
        if has_bias and need_b:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _gemm_dtype(layer: nn.Module, x: torch.Tensor, positions: int) -> torch.dtype | None:
    """The autocast dtype when ``layer`` should take a product path on ``x``, else None."""
    if (x.device.type != "cpu" or not torch.is_autocast_enabled("cpu") or not torch.is_grad_enabled()
            or positions > WEIGHT_GRAD_POSITIONS or layer.stride == (1, 1) or layer.groups != 1
            or layer.dilation != (1, 1) or layer.padding_mode != "zeros" or not layer.weight.requires_grad
            or x.dim() != 4 or not x.shape[0] or x.dtype not in (torch.float32, torch.bfloat16)):
        return None
    dtype = torch.get_autocast_dtype("cpu")
    return dtype if dtype == torch.bfloat16 else None


def _apply(x, weight, bias, dtype, stride, padding, output_padding, transposed, positions):
    args = (x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype))
    with torch.autocast("cpu", enabled=False):
        return _GemmConv.apply(*args, stride, padding, output_padding, transposed, positions <= FULL_POSITIONS)


class GemmConv2d(nn.Conv2d):
    def _conv_forward(self, x, weight, bias):
        if isinstance(self.padding, str):  # "same" / "valid": left to oneDNN
            return super()._conv_forward(x, weight, bias)
        h, w = x.shape[-2:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        positions = ((h + 2 * ph - kh) // sh + 1) * ((w + 2 * pw - kw) // sw + 1)
        dtype = _gemm_dtype(self, x, positions)
        if dtype is None:
            return super()._conv_forward(x, weight, bias)
        return _apply(x, weight, bias, dtype, self.stride, self.padding, (0, 0), False, positions)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x, output_size=None):
        positions = x.shape[-2] * x.shape[-1]  # the input is the reverse convolution's output
        dtype = _gemm_dtype(self, x, positions)
        if dtype is None:
            return super().forward(x, output_size)
        output_padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2,
                                              self.dilation)
        return _apply(x, self.weight, self.bias, dtype, self.stride, self.padding, tuple(output_padding), True,
                      positions)


_SWAPS = {nn.Conv2d: GemmConv2d, nn.ConvTranspose2d: GemmConvTranspose2d}


def use_gemm_convolutions(model: nn.Module) -> nn.Module:
    """Switch ``model``'s plain 2-d convolution layers to the classes above, in place: they keep
    their parameters and state-dict keys and differ only in how they compute while training."""
    for layer in model.modules():
        if type(layer) in _SWAPS:
            layer.__class__ = _SWAPS[type(layer)]
    return model
