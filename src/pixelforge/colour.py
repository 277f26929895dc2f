"""Colour spaces and colour transfer for (..., 3, H, W) RGB float images in [0, 1].

:func:`transfer_colours` moves an image's colour distribution onto a reference's by sliced optimal
transport (Pitié, Kokaram & Dahyot 2005, "N-dimensional probability density function transfer";
Rabin et al. 2011): each iteration draws a random orthonormal basis of RGB space, and along each of its
three axes moves every pixel to the reference value of the same rank (1-D optimal transport is
sorting). The iterations converge to the reference's full 3-D colour distribution, not just its
per-channel histograms or moments, while every pixel keeps its rank, so the image's content is kept.

:func:`match_chroma` and :func:`match_chroma_histogram` (AdaIN's ``colour_match``) work in YCbCr instead:
they give a picture the style's chroma (its mean and spread, or its whole histogram by
:func:`quantile_map`) and move its luma only part of the way, so its contrast, and with it its structure,
stays the picture's own.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_REFERENCE_PIXELS = 1 << 18  # colours sampled from the references (ranks need no more)

# RGB -> Y, Cb, Cr (ITU-R BT.601, full range, JPEG's) as a matrix, without the chroma's 0.5 offset; and back
YCBCR_MATRIX = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
FROM_YCBCR_MATRIX = torch.linalg.inv(YCBCR_MATRIX)
_CHROMA_OFFSET = torch.tensor([0.0, 0.5, 0.5])[:, None, None]


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> Y, Cb, Cr (BT.601, full range, Cb/Cr centred at 0.5)."""
    return torch.einsum("ij,...jhw->...ihw", YCBCR_MATRIX.to(rgb.device, rgb.dtype), rgb) + _CHROMA_OFFSET.to(rgb)


def ycbcr_to_rgb(ycc: Tensor) -> Tensor:
    """The inverse of :func:`rgb_to_ycbcr`."""
    return torch.einsum("ij,...jhw->...ihw", FROM_YCBCR_MATRIX.to(ycc.device, ycc.dtype), ycc - _CHROMA_OFFSET.to(ycc))


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


def _pixel_moments(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per image: the RGB pixels as (N, 3, H*W) fp32, their mean (N, 3) and covariance (N, 3, 3)."""
    flat = images.float().flatten(2)
    mean = flat.mean(-1)
    centred = flat - mean[:, :, None]  # not E[xx^T] - mean mean^T: a nearly flat picture's spread would cancel out
    return flat, mean, centred @ centred.transpose(1, 2) / flat.shape[-1]


def match_chroma(image: Tensor, style: Tensor, eps: float = 1e-5, luma_spread: float = 0.0) -> Tensor:
    """``image`` with the style's colours but its own contrast: in YCbCr, the chroma channels (Cb, Cr) get the
    style's mean and spread (AdaIN on the pixels) and the luma (Y) only the style's mean. Per RGB channel
    (``adain(image, style)``) the spread of the luma would follow the style's too, rescaling the picture's
    contrast, and with it its structure and its features' statistics. ``luma_spread`` t moves the luma's
    spread part of the way: sigma_image^(1 - t) sigma_style^t (0: the picture's own, 1: the style's). Being
    linear in the pixels, it is one 3x3 matrix and offset per image, from the RGB means and covariances of
    image and style."""
    to, back = YCBCR_MATRIX.to(image.device), FROM_YCBCR_MATRIX.to(image.device)
    flat, mean, cov = _pixel_moments(image)
    _, style_mean, style_cov = _pixel_moments(style)

    def ycbcr(mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:  # the YCbCr means and spreads, (N, 3) each
        return mean @ to.T, (((to @ cov) * to).sum(-1) + eps).sqrt()

    (y_mean, y_std), (s_mean, s_std) = ycbcr(mean, cov), ycbcr(style_mean, style_cov)
    scale = torch.cat([(s_std[:, :1] / y_std[:, :1]) ** luma_spread, s_std[:, 1:] / y_std[:, 1:]], dim=1)
    matrix = back @ (scale[:, :, None] * to)  # (N, 3, 3): RGB -> YCbCr, scaled, -> RGB
    offset = (s_mean - scale * y_mean) @ back.T
    return (matrix @ flat + offset[:, :, None]).view(image.shape)


HISTOGRAM_BINS = 4096  # quantile_map's bins per channel between its smallest and largest value


def quantile_map(values: Tensor, reference: Tensor, bins: int = HISTOGRAM_BINS) -> Tensor:
    """``values`` (N, C, K) moved onto ``reference``'s (N or 1, C, S) distribution channel by channel,
    keeping their order (histogram matching): a value below a fraction q of its channel's values becomes the
    reference's q-quantile. The fractions come from a histogram of ``bins`` equal bins between the channel's
    extremes, linearly interpolated within each bin, so the map is piecewise linear and increasing; no
    sort of the K values (the reference's S values are sorted)."""
    n, c, k = values.shape
    low, high = values.amin(-1, keepdim=True), values.amax(-1, keepdim=True)
    position = (values - low) / ((high - low).clamp_min(1e-8) / bins)  # in [0, bins]
    bin_index = position.floor().clamp(max=bins - 1)
    within = position - bin_index
    bin_index = bin_index.long()
    counts = values.new_zeros(n, c, bins).scatter_add_(-1, bin_index, torch.ones_like(values))
    below = torch.cat([values.new_zeros(n, c, 1), counts.cumsum(-1)], dim=-1) / k  # share under each bin edge
    ref_sorted = reference.float().sort(-1).values.expand(n, c, -1)
    s = ref_sorted.shape[-1]
    rank = (below * s - 0.5).clamp(0, s - 1)
    rank_low = rank.floor()
    at_edges = torch.lerp(ref_sorted.gather(-1, rank_low.long()),
                          ref_sorted.gather(-1, (rank_low + 1).clamp(max=s - 1).long()), rank - rank_low)
    return torch.lerp(at_edges.gather(-1, bin_index), at_edges.gather(-1, bin_index + 1), within)


def match_chroma_histogram(image: Tensor, style: Tensor, luma_spread: float = 0.0) -> Tensor:
    """As :func:`match_chroma`, but with whole distributions instead of means and spreads: in YCbCr each
    chroma channel (Cb, Cr) takes the style's histogram (:func:`quantile_map`, which keeps the order of the
    picture's values), and the luma moves ``luma_spread`` t of the way from the picture's own, shifted to the
    style's mean (t = 0), to the style's histogram (t = 1). In fp32 under autocast too: the histogram would
    otherwise bin bf16-rounded values."""
    with torch.autocast(image.device.type, enabled=False):
        return _match_chroma_histogram(image.float(), style.float(), luma_spread)


def _match_chroma_histogram(image: Tensor, style: Tensor, luma_spread: float) -> Tensor:
    to, back = YCBCR_MATRIX.to(image.device), FROM_YCBCR_MATRIX.to(image.device)
    ycc = to @ image.flatten(2)
    style_ycc = to @ style.flatten(2)
    luma = ycc[:, :1] - ycc[:, :1].mean(-1, keepdim=True) + style_ycc[:, :1].mean(-1, keepdim=True)
    if luma_spread:
        luma = torch.lerp(luma, quantile_map(ycc[:, :1], style_ycc[:, :1]), luma_spread)
    chroma = quantile_map(ycc[:, 1:], style_ycc[:, 1:])
    return (back @ torch.cat([luma, chroma], dim=1)).view(image.shape)
