"""Measures for judging style transfer: how much of the photo a result keeps, how close it comes to the style.

Every function takes float images in [0, 1], one (3, H, W) or a batch (N, 3, H, W) (one reference image
is compared with every image of a batch), and returns one value per image (0-d, or shape (N,)).

Content (the result against its photo, the result resized to the photo's size first):
:func:`luminance_ssim` and :func:`edge_agreement`; higher is better, 1 = the photo itself.

Style (the result against the style image, both resized to ``side`` = 256 px on the longer side, which
keeps the scale of the strokes relative to the image): :func:`gram_distance`,
:func:`sliced_wasserstein_distance` (no Gram statistics) and :func:`colour_histogram_distance`; lower
is better, 0 = the style's own statistics.

The feature measures use judge networks (:func:`style_judges`) that no pixelforge method optimises or
trains with: Gatys, the feed-forward stylizer and AdaIN all use the seed-0
:class:`~pixelforge.models.style.RandomFeatures`, and a Gram distance under the network a method
minimised it with flatters that method. The judges are RandomFeatures with other seeds
(:data:`JUDGE_SEEDS`) and :class:`MaxPoolFeatures`, another architecture.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..colour import rgb_to_ycbcr
from ..errors import PixelforgeError
from ..models.style import IMAGENET_MEAN, IMAGENET_STD, RandomFeatures, gram_matrix, pink_noise, quantile_distance
from .image_quality import ssim

STYLE_SIDE = 256  # longer side (px) both images are resized to for the style measures
JUDGE_SEEDS = (101, 202)  # RandomFeatures seeds of the judges (the methods use seed 0)
MAXPOOL_JUDGE_SEED = 303
EDGE_SIGMA = 1.0  # Gaussian blur (px) before the Sobel filter, so that noise and grain are not edges
EDGE_FRACTION = 0.1  # the strongest 10% of the gradient magnitudes are edges
EDGE_TOLERANCE = 1  # px: an edge counts as matched within this distance
SWD_PROJECTIONS = 64


# ----------------------------------------------------------------------------- judges

class MaxPoolFeatures(nn.Module):
    """The second judge architecture: a single-scale stack of 3x3 convolutions with fixed random weights
    (He-initialised from a seeded generator, zero-mean), ReLU and 2x2 *max* pooling between levels; layers
    ``m1`` ... ``m4`` see the image at scales 1 ... 1/8. Each channel is scaled to unit RMS on pink noise,
    level by level, as in :class:`~pixelforge.models.style.RandomFeatures` (which differs in its multi-scale
    first level, widths, depth and average pooling)."""

    name = "maxpool"

    def __init__(self, seed: int = MAXPOOL_JUDGE_SEED, widths: tuple[int, ...] = (32, 64, 96, 128),
                 calibration_size: int = 128):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in zip((3, *widths[:-1]), widths))
        for i, conv in enumerate(self.convs):
            weight = torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / (conv.in_channels * 9))
            conv.weight.data.copy_(weight - weight.mean(dim=(1, 2, 3), keepdim=True))
            conv.bias.data.copy_(torch.rand(conv.bias.shape, generator=generator) * 0.1)
            self.register_buffer(f"scale{i}", torch.ones(1, conv.out_channels, 1, 1))
        self.style_layers = tuple(f"m{i + 1}" for i in range(len(widths)))
        noise = pink_noise(calibration_size, seed + 1)
        with torch.no_grad():
            for i, name in enumerate(self.style_layers):
                rms = self._raw(noise, i + 1)[name].pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
                getattr(self, f"scale{i}").mul_(1.0 / rms.clamp_min(1e-6))
        self.eval().requires_grad_(False)

    def _raw(self, images: Tensor, depth: int) -> dict[str, Tensor]:
        x = (images - self.mean) / self.std
        out = {}
        for i, conv in enumerate(self.convs[:depth]):
            x = F.relu(conv(F.max_pool2d(x, 2) if i else x)) * getattr(self, f"scale{i}")
            out[self.style_layers[i]] = x
        return out

    def forward(self, images: Tensor, layers=None) -> dict[str, Tensor]:
        layers = tuple(layers or self.style_layers)
        out = self._raw(images, max(self.style_layers.index(name) for name in layers) + 1)
        return {name: out[name] for name in layers}


@functools.lru_cache(maxsize=1)
def _judges() -> tuple[nn.Module, ...]:
    return (*(RandomFeatures(seed=seed) for seed in JUDGE_SEEDS), MaxPoolFeatures())


def style_judges() -> list[nn.Module]:
    """The judges of the style measures (built once, frozen), each used on its ``style_layers``:
    RandomFeatures with seeds 101 and 202 (r1 ... r5) and :class:`MaxPoolFeatures` (m1 ... m4)."""
    return list(_judges())


def _pair(result: Tensor, reference: Tensor, what: str) -> tuple[Tensor, Tensor, bool]:
    """Both as float (N, 3, H, W) batches (the reference of length 1 or N), and whether the result is one image."""
    batches = []
    for x, name in ((result, "the result"), (reference, what)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise PixelforgeError(f"{name} must be a float (3, H, W) or (N, 3, H, W) tensor in [0, 1], got "
                                  f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        batches.append(x.detach().float().reshape(-1, *x.shape[-3:]))
    r, ref = batches
    if ref.shape[0] not in (1, r.shape[0]):
        raise PixelforgeError(f"{r.shape[0]} results but {ref.shape[0]} images as {what}; give one or as many")
    return r, ref, result.dim() == 3


def _resize(x: Tensor, hw) -> Tensor:
    same = tuple(x.shape[-2:]) == tuple(hw)
    return x if same else F.interpolate(x, size=tuple(hw), mode="bilinear", antialias=True).clamp(0, 1)


def _longer_side(x: Tensor, side: int | None) -> Tensor:
    scale = 1.0 if side is None else side / max(x.shape[-2:])
    return _resize(x, [max(1, round(n * scale)) for n in x.shape[-2:]])


def _out(values: Tensor, single: bool) -> Tensor:
    return values[0] if single else values


def _content_pair(result: Tensor, photo: Tensor) -> tuple[Tensor, Tensor, bool]:
    """The BT.601 YCbCr of the result (at the photo's size) and of the photo, batches of equal length."""
    r, p, single = _pair(result, photo, "the photo")
    r = rgb_to_ycbcr(_resize(r, p.shape[-2:]))
    return r, rgb_to_ycbcr(p).expand(r.shape[0], -1, -1, -1), single


# ----------------------------------------------------------------------------- content

@torch.no_grad()
def luminance_ssim(result: Tensor, photo: Tensor) -> Tensor:
    """SSIM (11x11 Gaussian window, sigma 1.5) of the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of the
    result and of the photo. Higher is better; 1 for the photo itself."""
    r, p, single = _content_pair(result, photo)
    return _out(ssim(r[:, :1], p[:, :1]), single)


def _edges(y: Tensor) -> Tensor:
    """(N, 1, H, W) luma -> boolean edge map: the strongest :data:`EDGE_FRACTION` of the Sobel gradient
    magnitudes after a Gaussian blur of :data:`EDGE_SIGMA` px."""
    r = max(1, math.ceil(2 * EDGE_SIGMA))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=y.dtype) ** 2 / (2 * EDGE_SIGMA ** 2))
    k = k / k.sum()
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    gradients = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), torch.stack([sobel, sobel.T])[:, None])
    magnitude = gradients.pow(2).sum(1, keepdim=True).sqrt()
    threshold = torch.quantile(magnitude.flatten(1), 1 - EDGE_FRACTION, dim=1).view(-1, 1, 1, 1)
    return (magnitude >= threshold) & (magnitude > 1e-4)  # a flat image has no edges


@torch.no_grad()
def edge_agreement(result: Tensor, photo: Tensor) -> Tensor:
    """Boundary F1 of the edge maps of the two lumas (see :func:`_edges`): precision = the share of the
    result's edge pixels within :data:`EDGE_TOLERANCE` px of a photo edge, recall = the share of the photo's
    edge pixels within that distance of a result edge, F1 = 2 P R / (P + R). Higher is better; 1 = the same
    edges, 0 = none in common (and 1 when neither image has an edge)."""
    r, p, single = _content_pair(result, photo)
    er, ep = _edges(r[:, :1]), _edges(p[:, :1])

    def near(edges: Tensor) -> Tensor:
        return F.max_pool2d(edges.float(), 2 * EDGE_TOLERANCE + 1, stride=1, padding=EDGE_TOLERANCE) > 0

    count_r, count_p = er.flatten(1).sum(1).float(), ep.flatten(1).sum(1).float()
    precision, recall = ((er & near(ep)).flatten(1).sum(1) / count_r.clamp_min(1),
                         (ep & near(er)).flatten(1).sum(1) / count_p.clamp_min(1))
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    return _out(torch.where((count_r == 0) & (count_p == 0), torch.ones_like(f1), f1), single)


# ----------------------------------------------------------------------------- style

def _style_pair(result: Tensor, style: Tensor, side: int | None) -> tuple[Tensor, Tensor, bool]:
    r, s, single = _pair(result, style, "the style")  # the longer sides resized to ``side`` (None: as they are)
    return _longer_side(r, side), _longer_side(s, side), single


@torch.no_grad()
def gram_distance(result: Tensor, style: Tensor, judges=None, side: int | None = STYLE_SIDE) -> Tensor:
    """mean over the judges (default :func:`style_judges`) and their style layers of the relative Frobenius
    distance ||G(result) - G(style)||_F / ||G(style)||_F, with G the Gram matrix of
    :func:`~pixelforge.models.style.gram_matrix`. Lower is better; 0 = the same Gram statistics."""
    r, s, single = _style_pair(result, style, side)
    terms = []
    for judge in judges or style_judges():
        fr, fs = judge(r, judge.style_layers), judge(s, judge.style_layers)
        for name in judge.style_layers:
            gr, gs = gram_matrix(fr[name]), gram_matrix(fs[name])
            terms.append((gr - gs).flatten(1).norm(dim=1) / gs.flatten(1).norm(dim=1).clamp_min(1e-12))
    return _out(torch.stack(terms).mean(0), single)


@torch.no_grad()
def sliced_wasserstein_distance(result: Tensor, style: Tensor, judges=None, side: int | None = STYLE_SIDE,
                                projections: int = SWD_PROJECTIONS, seed: int = 0) -> Tensor:
    """The style measure without Gram statistics: per judge and style layer, the feature vectors at all
    positions of result and style are two point clouds in R^C, projected on ``projections`` seeded random
    unit directions; sliced 2-Wasserstein distance = sqrt(mean over directions of W_2^2 of the projections),
    from sorted projections (quantile resampling when the counts differ). Mean over judges and layers, in
    units of the judges' features (unit RMS on noise). Lower is better; 0 = the same distributions."""
    r, s, single = _style_pair(result, style, side)
    total, count = torch.zeros(r.shape[0]), 0
    for judge in judges or style_judges():
        fr, fs = judge(r, judge.style_layers), judge(s, judge.style_layers)
        for name in judge.style_layers:
            generator = torch.Generator().manual_seed(seed + count)
            directions = torch.randn(projections, fr[name].shape[1], generator=generator)
            directions = directions / directions.norm(dim=1, keepdim=True)
            pr, ps = directions @ fr[name].flatten(2), directions @ fs[name].flatten(2)
            for i in range(r.shape[0]):
                total[i] += quantile_distance(pr[i], ps[min(i, ps.shape[0] - 1)], 2).sqrt()
            count += 1
    return _out(total / count, single)


@torch.no_grad()
def colour_histogram_distance(result: Tensor, style: Tensor, side: int | None = STYLE_SIDE) -> Tensor:
    """Mean over R, G and B of the 1-D Wasserstein-1 (earth mover's) distance between the channel's pixel
    value distributions in the result and in the style image: the mean amount (in [0, 1]) by which a pixel
    value must move. Lower is better; 0 = the same colour histograms."""
    r, s, single = _style_pair(result, style, side)
    values = [quantile_distance(r[i].flatten(1), s[min(i, s.shape[0] - 1)].flatten(1), 1) for i in range(r.shape[0])]
    return _out(torch.stack(values), single)
