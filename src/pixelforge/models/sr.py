"""Single-image super-resolution: a low-resolution image x in, an image ``scale`` times larger out.

Objective: minimise the pixel loss between f(D(y)) and the high-resolution photo y, where
D is the degradation (bicubic downscaling by ``scale`` with antialiasing, see
:func:`downscale`) and the loss is L1 (|f(D(y)) - y| averaged over pixels; sharper than L2
because it does not punish rare large errors at edges quadratically) or L2 (the mean squared
error, whose minimiser maximises PSNR directly but favours blur).

Two networks, both working entirely at the *low* resolution and upsampling only at the end
with a sub-pixel convolution (a convolution to C*s^2 channels rearranged by PixelShuffle into
an s-times larger image; Shi et al. 2016), so the cost per output pixel stays small:

- ``espcn``: ESPCN, three convolutions (5x5, 3x3, 3x3) with tanh, then the sub-pixel layer.
- ``edsr``: EDSR/SRResNet-style residual network (Lim et al. 2017): a 3x3 head, ``blocks``
  residual blocks [conv-ReLU-conv, scaled by ``res_scale``, no batch norm: normalisation
  removes the range flexibility SR needs], a conv and a skip over the whole body, then the
  sub-pixel upsampler (one PixelShuffle(s) step: cheaper on the CPU than EDSR's progressive
  x2 stages, whose convolutions run at the higher resolutions).

Both predict the *difference to bicubic upsampling* by default (``residual=True``): the
output is bicubic(x) + f(x), and the last layer starts at zero, so an untrained network is
exactly bicubic and training only has to learn the missing detail (the VDSR observation).

Pixels are in [0, 1]; the networks centre them at 0.5 internally. Every layer is a
convolution with a bounded footprint, so the value of an output pixel depends only on the
input pixels within :attr:`receptive_radius` of it: tiled inference with that much overlap
gives the same image as processing the whole image at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from .registration import register_model

SCALES = (2, 3, 4)


@dataclass
class SRConfig:
    scale: int = flag(4, help="upscaling factor", choices=SCALES)
    channels: int = 3  # 3: RGB in and out; 1: one plane (grayscale; RGB images go channel by channel)
    # feature channels (espcn: of the first layer; the second has half)
    width: int = flag(32, help="feature channels", check="positive")
    blocks: int = flag(6, help="residual blocks, edsr only")  # residual blocks (edsr only)
    res_scale: float = 1.0  # residual branch multiplier (edsr; EDSR uses 0.1 for very wide nets)
    residual: bool = True  # predict the difference to bicubic upsampling

    def __post_init__(self):
        if self.scale not in SCALES:
            raise PixelforgeError(f"super-resolution scales are {', '.join(map(str, SCALES))}, not {self.scale}")
        if self.channels not in (1, 3):
            raise PixelforgeError(f"super-resolution models take 1 or 3 channels, not {self.channels}")
        if self.width < 4 or self.blocks < 0:
            raise PixelforgeError("width must be at least 4 and blocks at least 0")


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation the models learn to invert: bicubic downscaling by ``scale`` with
    antialiasing (``F.interpolate(mode="bicubic", antialias=True)``, like MATLAB's imresize),
    on float images in [0, 1]; (N, C, H, W) with H and W multiples of ``scale``."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise PixelforgeError(f"{w}x{h} is not a multiple of scale {scale}")
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def upscale_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Plain bicubic upsampling (the baseline, and the base the residual networks add to)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


class _SRBase(nn.Module):
    cfg: SRConfig
    body_radius: int  # how far (in input pixels) the learned part looks

    @property
    def scale(self) -> int:
        return self.cfg.scale

    @property
    def receptive_radius(self) -> int:
        """Input pixels on each side of a pixel that influence its output (bicubic looks 2 px)."""
        return max(self.body_radius, 2 if self.cfg.residual else 0)

    def learned(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.learned(x - 0.5)
        if self.cfg.residual:
            # The sum in fp32 even under autocast: bf16 would round the base image itself
            # (steps of 1/256 near white, a third of an 8-bit level).
            # NCHW for the interpolation (its channels_last kernel is slower on the CPU)
            # and for the sum (mixed memory formats make element-wise kernels crawl).
            nchw = dict(dtype=torch.float32, memory_format=torch.contiguous_format)  # one copy each
            return upscale_bicubic(x.to(**nchw), self.cfg.scale) + out.to(**nchw)
        return out + 0.5


class ESPCN(_SRBase):
    def __init__(self, cfg: SRConfig):
        super().__init__()
        self.cfg = cfg
        c, w, s = cfg.channels, cfg.width, cfg.scale
        self.features = nn.Sequential(nn.Conv2d(c, w, 5, padding=2), nn.Tanh(),
                                      nn.Conv2d(w, w // 2, 3, padding=1), nn.Tanh())
        self.to_pixels = nn.Conv2d(w // 2, c * s * s, 3, padding=1)
        self.shuffle = nn.PixelShuffle(s)
        self.body_radius = 2 + 1 + 1
        if cfg.residual:
            nn.init.zeros_(self.to_pixels.weight)
            nn.init.zeros_(self.to_pixels.bias)

    def learned(self, x):
        return self.shuffle(self.to_pixels(self.features(x)))


class ResBlock(nn.Module):
    def __init__(self, width: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x):
        residual = self.conv2(F.relu(self.conv1(x), inplace=True))
        return x + (residual if self.res_scale == 1 else self.res_scale * residual)


class EDSR(_SRBase):
    def __init__(self, cfg: SRConfig):
        super().__init__()
        self.cfg = cfg
        c, w, s = cfg.channels, cfg.width, cfg.scale
        self.head = nn.Conv2d(c, w, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(w, cfg.res_scale) for _ in range(cfg.blocks)],
                                  nn.Conv2d(w, w, 3, padding=1))
        self.to_pixels = nn.Conv2d(w, c * s * s, 3, padding=1)
        self.shuffle = nn.PixelShuffle(s)
        self.body_radius = 1 + 2 * cfg.blocks + 1 + 1
        if cfg.residual:
            nn.init.zeros_(self.to_pixels.weight)
            nn.init.zeros_(self.to_pixels.bias)

    def learned(self, x):
        h = self.head(x)
        return self.shuffle(self.to_pixels(h + self.body(h)))


@register_model("espcn", family="sr", config=SRConfig,
                description="ESPCN super-resolution: 3 convolutions + sub-pixel upsampling")
def build_espcn(cfg: SRConfig) -> ESPCN:
    return ESPCN(cfg)


@register_model("edsr", family="sr", config=SRConfig,
                description="EDSR/SRResNet-style residual super-resolution network (no batch norm)")
def build_edsr(cfg: SRConfig) -> EDSR:
    return EDSR(cfg)
