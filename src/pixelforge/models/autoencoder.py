"""Autoencoders: a convolutional autoencoder, its denoising/inpainting use, the VAE
(beta-VAE) and the class-conditional VAE.

An encoder ``E`` maps an image ``x`` (floats in [-1, 1]) to a code ``z`` of ``latent_dim``
numbers, a decoder ``D`` maps codes back to images.

Autoencoder (``conv-ae``): minimise the reconstruction error

    L_AE = || D(E(x)) - x ||^2                 (mean squared error per pixel)

A *denoising* autoencoder is the same network trained on corrupted inputs ``c(x)``
(noise, holes) with the clean image as the target: ``|| D(E(c(x))) - x ||^2`` (Vincent et
al. 2008); see :mod:`pixelforge.training.autoencoder` for the corruptions.

Variational autoencoder (``conv-vae``, Kingma & Welling 2014): the encoder gives a
Gaussian posterior ``q(z|x) = N(mu(x), diag sigma(x)^2)``, the prior is ``p(z) = N(0, I)``
and the decoder a likelihood ``p(x|z)``. Training maximises the evidence lower bound

    log p(x) >= ELBO = E_q[ log p(x|z) ] - KL( q(z|x) || p(z) )
    KL = 1/2 sum_j ( mu_j^2 + sigma_j^2 - log sigma_j^2 - 1 )

with the reparameterisation ``z = mu + sigma * eps, eps ~ N(0, I)``. A beta-VAE
(Higgins et al. 2017) weights the KL term by ``beta`` (> 1: a more regular, disentangled
latent space, blurrier reconstructions). ``p(x|z)`` is a *discretised logistic* over the
256 intensity levels of each sub-pixel (the decoder predicts a mean and a log-scale per
sub-pixel, as in PixelCNN++), so ``-ELBO / (D ln 2)`` is an upper bound on the model's
negative log-likelihood of the 8-bit data in bits per dimension.

Class-conditional VAE (Sohn et al. 2015): a label embedding enters both the encoder
``q(z|x, y)`` and the decoder ``p(x|z, y)``; sampling picks the class.

Architecture: each encoder level is a stride-2 4x4 convolution and a 3x3 convolution
(batch norm, SiLU) halving the resolution down to 4-7 px; a linear layer makes the code.
The decoder mirrors it with stride-2 transposed convolutions. Images of 16 to 64 px
(multiples of 4) and 1 to 3 channels.

Code shape (``code``): ``"vector"`` (the default) is the flat code above, ``latent_dim``
numbers. ``"map"`` keeps the code spatial: the encoder stops at a quarter of the image
size (two levels; 7x7 at 28 px) and a 3x3 convolution makes a feature map of
``latent_dim`` channels, ``(latent_dim, size/4, size/4)``; the decoder starts from it with
a 3x3 convolution. A map keeps *where* things are, which a denoiser or inpainter needs
(a vector bottleneck blurs detail away); a vector is the compact, global code for
sampling and latent-space walks.

Depth (``res_blocks``): residual blocks (two 3x3 convolutions and a skip around them,
He et al. 2016) at the deepest level, after the encoder's last step down and before the
decoder's first step up. They work at the smallest resolution, so they add capacity
cheaply; every path still runs through the code (no connection bypasses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from .registration import register_model

MIN_SIZE, MAX_SIZE = 16, 64
CODE_KINDS = ("vector", "map")
MAP_LEVELS = 2  # a map code lies at 1/4 of the image size
LOG_SCALE_MIN = -7.0  # floor of the decoder's log-scale (PixelCNN++), keeps the likelihood finite


@dataclass
class AutoencoderConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = flag(32, help="size of the code; with --code map: channels of the code map", check="positive")
    # channels of the first (highest-resolution) level; each level doubles them, up to 4x
    width: int = flag(32, help="channels of the first level", check="positive")
    num_classes: int = 0  # > 0: class-conditional encoder and decoder
    # "vector": latent_dim numbers; "map": a latent_dim-channel map at 1/4 of the size
    code: str = flag(
        "vector", help="code shape: vector (latent_dim numbers) or map (a latent_dim-channel feature map at 1/4 of the "
                  "image size, 7x7 at 28 px: keeps detail for denoising / inpainting)", choices=("vector", "map"))
    # residual blocks at the deepest level, in the encoder and in the decoder each
    res_blocks: int = flag(
        0, help="residual blocks at the deepest level, in the encoder and the decoder each (1 gives a stronger "
                  "denoiser)")

    def __post_init__(self):
        if not (MIN_SIZE <= self.image_size <= MAX_SIZE) or self.image_size % 4:
            raise PixelforgeError(f"autoencoder image size {self.image_size} is not supported; use a multiple "
                                  f"of 4 from {MIN_SIZE} to {MAX_SIZE} (e.g. 28, 32, 64)")
        if self.channels not in (1, 2, 3):
            raise PixelforgeError(f"autoencoders take 1 to 3 channels, not {self.channels}")
        if self.latent_dim < 1 or self.width < 1 or self.num_classes < 0 or self.res_blocks < 0:
            raise PixelforgeError("latent_dim and width must be positive, num_classes and res_blocks >= 0")
        if self.code not in CODE_KINDS:
            raise PixelforgeError(f"unknown code shape {self.code!r}; use vector or map")

    @property
    def spatial(self) -> bool:
        return self.code == "map"

    @property
    def code_shape(self) -> tuple[int, ...]:
        """The shape of one code: (latent_dim,) or (latent_dim, size/4, size/4)."""
        return (self.latent_dim, self.base, self.base) if self.spatial else (self.latent_dim,)

    def levels(self) -> int:
        """Stride-2 steps: halve while the resolution stays even and at least 4 px after the step
        (a map code: exactly two steps)."""
        if self.spatial:
            return MAP_LEVELS
        n, s = 0, self.image_size
        while s % 2 == 0 and s // 2 >= 4 and n < 4:
            s //= 2
            n += 1
        return n

    @property
    def base(self) -> int:
        return self.image_size // 2 ** self.levels()

    def level_channels(self) -> list[int]:
        return [self.width * min(2 ** i, 4) for i in range(self.levels())]


def _block(c_in: int, c_out: int, conv: nn.Module) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(c_out), nn.SiLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.SiLU(inplace=True)]


class ResidualBlock(nn.Module):
    """``silu(x + bn(conv(silu(bn(conv(x))))))`` at constant channels and resolution."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.SiLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


EMBED = 64  # label embedding size of the conditional models


def _with_labels(h: torch.Tensor, embed: nn.Embedding | None, labels: torch.Tensor | None) -> torch.Tensor:
    """``h`` (N, F) or (N, C, H, W) with the label embedding appended (spread over a map)."""
    if embed is None:
        return h
    e = embed(labels).to(h.dtype)
    if h.dim() == 4:
        e = e[:, :, None, None].expand(-1, -1, *h.shape[-2:])
    return torch.cat([h, e], dim=1)


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig, out_dim: int):
        super().__init__()
        chans = cfg.level_channels()
        layers: list[nn.Module] = []
        c_in = cfg.channels
        for c in chans:
            layers += _block(c_in, c, nn.Conv2d(c_in, c, 4, 2, 1, bias=False))
            c_in = c
        layers += [ResidualBlock(c_in) for _ in range(cfg.res_blocks)]
        extra = EMBED if cfg.num_classes else 0
        self.embed = nn.Embedding(cfg.num_classes, EMBED) if cfg.num_classes else None
        if cfg.spatial:  # out_dim channels at 1/4 of the size
            self.body = nn.Sequential(*layers)
            self.head = nn.Conv2d(chans[-1] + extra, out_dim, 3, 1, 1)
        else:
            self.body = nn.Sequential(*layers, nn.Flatten())
            self.head = nn.Linear(chans[-1] * cfg.base ** 2 + extra, out_dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(_with_labels(self.body(x), self.embed, labels))


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig, out_channels: int):
        super().__init__()
        chans = list(reversed(cfg.level_channels()))  # deepest level first
        self.shape = (chans[0], cfg.base, cfg.base)
        extra = EMBED if cfg.num_classes else 0
        self.embed = nn.Embedding(cfg.num_classes, EMBED) if cfg.num_classes else None
        if cfg.spatial:
            self.project = nn.Sequential(nn.Conv2d(cfg.latent_dim + extra, chans[0], 3, 1, 1), nn.SiLU(inplace=True))
        else:
            self.project = nn.Sequential(nn.Linear(cfg.latent_dim + extra, chans[0] * cfg.base ** 2),
                                         nn.SiLU(inplace=True))
        layers: list[nn.Module] = [ResidualBlock(chans[0]) for _ in range(cfg.res_blocks)]
        for c_in, c_out in zip(chans, chans[1:] + [chans[-1]]):
            layers += _block(c_in, c_out, nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False))
        layers.append(nn.Conv2d(chans[-1], out_channels, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.project(_with_labels(z, self.embed, labels)).view(z.shape[0], *self.shape))


class ConvAutoencoder(nn.Module):
    """Encoder/decoder pair; ``variational`` makes it a VAE (Gaussian posterior, logistic likelihood)."""

    def __init__(self, cfg: AutoencoderConfig, variational: bool = False):
        super().__init__()
        self.cfg = cfg
        self.variational = variational
        self.encoder = Encoder(cfg, cfg.latent_dim * (2 if variational else 1))
        # A VAE's decoder predicts a mean and a log-scale per sub-pixel.
        self.decoder = Decoder(cfg, cfg.channels * (2 if variational else 1))

    @property
    def conditional(self) -> bool:
        return self.cfg.num_classes > 0

    def _labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if labels is None:
            raise PixelforgeError("this autoencoder is class-conditional: give labels")
        if labels.shape != (n,):
            raise PixelforgeError(f"expected {n} labels, got shape {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.cfg.num_classes):
            raise PixelforgeError(f"labels must be in 0..{self.cfg.num_classes - 1}")
        return labels

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        """AE: the code (N, *code_shape). VAE: (mu, logvar) of q(z|x)."""
        h = self.encoder(x, self._labels(labels, x.shape[0]))
        if not self.variational:
            return h
        mu, logvar = h.float().chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode_params(self, z: torch.Tensor, labels: torch.Tensor | None = None):
        """AE: the image. VAE: (mean, log_scale) of p(x|z), both (N, C, H, W)."""
        out = self.decoder(z, self._labels(labels, z.shape[0]))
        if not self.variational:
            return out
        mean, log_scale = out.float().chunk(2, dim=1)
        return torch.tanh(mean), log_scale.clamp(min=LOG_SCALE_MIN)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded image in [-1, 1] (a VAE's likelihood mean)."""
        out = self.decode_params(z, labels)
        return out[0] if self.variational else out.float().clamp(-1, 1)

    def code(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """A deterministic code: the AE's code, or the VAE posterior mean."""
        h = self.encode(x, labels)
        return h[0] if self.variational else h.float()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, train: bool = False):
        """The reconstruction in [-1, 1]; with ``train``: the raw AE output, or for a VAE
        (mu, logvar, mean, log_scale) with ``z`` drawn from q(z|x) by reparameterisation.
        (Training goes through ``forward`` so that DistributedDataParallel sees every pass.)"""
        if not train:
            return self.decode(self.code(x, labels), labels)
        if not self.variational:
            y = self._labels(labels, x.shape[0])
            return self.decoder(self.encoder(x, y), y)
        mu, logvar = self.encode(x, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mean, log_scale = self.decode_params(z, labels)
        return mu, logvar, mean, log_scale


@register_model("conv-ae", family="autoencoder", config=AutoencoderConfig,
                description="convolutional autoencoder, vector or map code (denoising/inpainting with --corrupt), "
                            "16-64 px")
def build_conv_ae(cfg: AutoencoderConfig) -> ConvAutoencoder:
    return ConvAutoencoder(cfg, variational=False)


@register_model("conv-vae", family="autoencoder", config=AutoencoderConfig,
                description="convolutional VAE / beta-VAE, optionally class-conditional, 16-64 px")
def build_conv_vae(cfg: AutoencoderConfig) -> ConvAutoencoder:
    return ConvAutoencoder(cfg, variational=True)


# -- objectives ----------------------------------------------------------------------------

def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over the latent dimensions (of a vector or a map)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).flatten(1).sum(dim=1)


def discretized_logistic_nll(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """-log p(x) per sample (nats, summed over sub-pixels) for ``x`` on the 256-level grid of [-1, 1].

    Each level owns the bin ``x +- 1/255``; the first and last bins extend to -inf/+inf.
    """
    x, mean, log_scale = x.float(), mean.float(), log_scale.float()
    centred = x - mean
    inv_s = torch.exp(-log_scale)
    plus = inv_s * (centred + 1 / 255)
    minus = inv_s * (centred - 1 / 255)
    cdf_plus, cdf_minus = torch.sigmoid(plus), torch.sigmoid(minus)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the lowest bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # log (1 - sigmoid(minus)): the highest bin
    mid = inv_s * centred
    # In the tails the bin mass underflows: use the density times the bin width there.
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid) + math.log(2 / 255)
    mass = cdf_plus - cdf_minus
    log_mass = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_pdf_mid)
    log_p = torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, log_mass))
    return -log_p.flatten(1).sum(dim=1)


def bits_per_dim(nats: torch.Tensor, dims: int) -> torch.Tensor:
    return nats / (dims * math.log(2))
