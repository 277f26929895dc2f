"""Colour spaces and colour transfer for (..., 3, H, W) RGB float images in [0, 1].

:func:`transfer_colours` moves an image's colour distribution onto a reference's by sliced optimal
transport (Pitié, Kokaram & Dahyot 2005, "N-dimensional probability density function transfer";
Rabin et al. 2011): each iteration draws a random orthonormal basis of RGB space, and along each of its
three axes moves every pixel to the reference value of the same rank (1-D optimal transport is
sorting). The iterations converge to the reference's full 3-D colour distribution, not just its
per-channel histograms or moments, while every pixel keeps its rank, so the image's content is kept.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_REFERENCE_PIXELS = 1 << 18  # colours sampled from the references (ranks need no more)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> Y, Cb, Cr (BT.601, full range, Cb/Cr centred at 0.5)."""
    r, g, b = rgb.unbind(-3)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([y, 0.5 + (b - y) / 1.772, 0.5 + (r - y) / 1.402], dim=-3)


def ycbcr_to_rgb(ycc: Tensor) -> Tensor:
    """The inverse of :func:`rgb_to_ycbcr`."""
    y, cb, cr = ycc.unbind(-3)
    r = y + 1.402 * (cr - 0.5)
    b = y + 1.772 * (cb - 0.5)
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return torch.stack([r, g, b], dim=-3)


def luminance(rgb: Tensor) -> Tensor:
    """The BT.601 luma Y of (..., 3, H, W) RGB, as (..., 1, H, W)."""
    return rgb_to_ycbcr(rgb)[..., :1, :, :]


def _quantiles(values: Tensor, count: int) -> Tensor:
    """``count`` evenly spaced quantiles of the rows of ``values`` (3, M), nearest-rank."""
    ordered = values.sort(dim=1).values
    index = torch.linspace(0, values.shape[1] - 1, count).round().long()
    return ordered[:, index]


def transfer_colours(image: Tensor, references: list[Tensor], weights: list[float] | None = None, *,
                     iterations: int = 20, seed: int = 0) -> Tensor:
    """``image`` (3, H, W) with the colour distribution of ``references`` (each (3, h, w); mixed in
    proportion to ``weights``), by sliced optimal transport (module docstring); clamped to [0, 1]."""
    weights = weights or [1.0] * len(references)
    generator = torch.Generator().manual_seed(seed)
    total = sum(weights)
    source = image.reshape(3, -1).float().clone()
    count = source.shape[1]
    pools = []
    for reference, weight in zip(references, weights):
        if weight <= 0:
            continue
        pixels = reference.reshape(3, -1).float()
        take = max(1, round(min(count, MAX_REFERENCE_PIXELS) * weight / total))
        pools.append(pixels[:, torch.randint(pixels.shape[1], (take,), generator=generator)])
    target = torch.cat(pools, dim=1)
    for _ in range(iterations):
        basis, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator))
        projected, reference = basis.T @ source, basis.T @ target
        ranks = projected.argsort(dim=1).argsort(dim=1)
        matched = _quantiles(reference, count).gather(1, ranks)
        source = source + basis @ (matched - projected)
    return source.reshape(image.shape).clamp(0, 1)
