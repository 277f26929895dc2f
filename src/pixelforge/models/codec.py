"""Learned image compression: Balle et al.'s factorized-prior and scale-hyperprior codecs.

An analysis transform ``g_a`` maps an image ``x`` to latents ``y``; quantization rounds them
(``y_hat = round(y)``); an entropy model gives every integer symbol a probability, and an
entropy coder writes ``-log2 p(y_hat)`` bits; the synthesis transform ``g_s`` decodes
``x_hat = g_s(y_hat)``. Training minimises the rate-distortion Lagrangian

    L = R + lambda * 255^2 * D,   R = E[-log2 p(y_tilde)] / pixels (bits per pixel),
                                  D = E[(x - x_hat)^2]   (x in [0, 1])

where rounding, which has no gradient, is replaced by its proxy ``y_tilde = y + u`` with
``u ~ U(-1/2, 1/2)`` in the rate term (the noisy latent's density is the quantized one's
continuous relaxation). The synthesis transform sees ``round(y)`` with a straight-through
gradient ("mixed" quantization, Minnen & Singh 2020), so the decoder is trained on exactly
what it will decode; ``quantization="noise"`` gives it ``y_tilde`` instead, as in the papers.

Entropy models:
- ``factorized`` (Balle et al. 2017/2018): every latent channel has its own learned,
  non-parametric density (:class:`FactorizedDensity`), the same at every position.
- ``hyperprior`` (Balle et al. 2018): a hyper-analysis ``h_a`` summarises ``|y|`` in side
  information ``z``, coded with a factorized density; the hyper-synthesis ``h_s`` predicts a
  scale ``sigma`` for every latent, and ``y_hat`` is coded with a zero-mean Gaussian of that
  scale convolved with U(-1/2, 1/2). The bits of ``z`` count in the rate.

Quality levels: one network serves several lambdas through per-level channel gains (Cui et
al. 2021): ``y = g_a(x) * gain[q]`` before quantization and ``y_hat * inverse_gain[q]``
before synthesis. A larger gain makes the quantization step relatively finer (more bits,
less distortion). Each training step draws a level per image and uses its lambda.

The transforms use GDN, generalized divisive normalization (Balle et al. 2016):
``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` and its inverse in the decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..family import flag
from .registration import register_model

PRIORS = ("factorized", "hyperprior")
QUANTIZATIONS = ("mixed", "noise")
LIKELIHOOD_FLOOR = 1e-9
# Gaussian scales the coder can use: sigma is snapped up to this log-spaced table so encoder
# and decoder pick the same coding distribution from an integer index.
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
PMF_PRECISION = 16  # the factorized density's coding tables are integers summing to 2^16


def scale_table() -> np.ndarray:
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


@dataclass
class CodecConfig:
    channels: int = 3
    width: int = flag(96, help="channels inside the transforms", check="positive")  # N
    latent: int = flag(128, help="latent channels", check="positive")  # M
    prior: str = flag("hyperprior", help="entropy model", choices=("hyperprior", "factorized"))
    lmbdas: list[float] = flag(default_factory=lambda: [0.0018, 0.0035, 0.0067, 0.013, 0.025], flag="--lmbda",
                               help="rate-distortion trade-offs, one per quality level, low to high")
    quantization: str = flag("mixed", choices=("mixed", "noise"),
                             help="what the decoder sees in training: rounded latents (mixed) or noisy ones (noise)")

    def __post_init__(self):
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; use {' or '.join(PRIORS)}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"unknown quantization {self.quantization!r}; use {' or '.join(QUANTIZATIONS)}")
        if self.channels not in (1, 3):
            raise ValueError(f"a codec codes 1 or 3 channels, not {self.channels}")
        if not self.lmbdas or any(not (0 < x < 10) for x in self.lmbdas):
            raise ValueError(f"lmbdas must be a non-empty list of values in (0, 10), not {self.lmbdas}")
        if self.width < 4 or self.latent < 4:
            raise ValueError("width and latent must be at least 4")

    @property
    def stride(self) -> int:
        """The factor images are padded to: 16 for ``g_a``, 64 with the hyperprior's two more halvings."""
        return 64 if self.prior == "hyperprior" else 16


class GDN(nn.Module):
    """Generalized divisive normalization (``inverse=True``: its approximate inverse, IGDN).

    beta and gamma must stay positive; they are kept as softplus of free parameters. The
    normalisation pool is computed in fp32 even under bf16 autocast: squares of activations
    lose too much in bf16.
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse

        def inv_softplus(v: torch.Tensor) -> torch.Tensor:
            return v + torch.log(-torch.expm1(-v))

        self.beta_raw = nn.Parameter(inv_softplus(torch.ones(channels)))
        gamma = torch.full((channels, channels), 1e-3) + torch.eye(channels) * (gamma_init - 1e-3)
        self.gamma_raw = nn.Parameter(inv_softplus(gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            xf = x.float()
            beta = F.softplus(self.beta_raw) + 1e-6
            gamma = F.softplus(self.gamma_raw)
            norm = F.conv2d(xf * xf, gamma[:, :, None, None], beta)
            out = xf * torch.sqrt(norm) if self.inverse else xf * torch.rsqrt(norm)
        return out.to(x.dtype)


def _down(cin: int, cout: int, k: int = 5) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


class FactorizedDensity(nn.Module):
    """A learned univariate density per channel (Balle et al. 2018, appendix 6.1).

    The cumulative c(x) = sigmoid(f_K(... f_1(x))) with f_k(x) = g(H_k x + b_k) and
    g(x) = x + a_k * tanh(x); H_k >= 0 (softplus) and a_k > -1 (tanh) keep c monotonic.
    The probability of the integer bin around v is c(v + 1/2) - c(v - 1/2); it convolves the
    density with U(-1/2, 1/2), so it is also the noisy latent's density during training.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))
        # Integer coding tables (see update_tables); empty until the codec is prepared for coding.
        self.register_buffer("pmf", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("offset", torch.zeros((), dtype=torch.int32))
        # Every saved state (checkpoint, shipped file) carries tables that match its weights.
        self.register_state_dict_pre_hook(lambda module, prefix, keep_vars: module.update_tables())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        pmf = state_dict.get(prefix + "pmf")
        if pmf is not None:  # the tables' width depends on the weights: take the stored shape
            self.pmf = torch.zeros_like(pmf, dtype=torch.int32, device=self.pmf.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def logits_cdf(self, v: torch.Tensor) -> torch.Tensor:
        """v: (C, 1, L) -> the logits of c(v), same shape."""
        x = v
        for k, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if k < len(self.factors):
                x = x + torch.tanh(self.factors[k]) * torch.tanh(x)
        return x

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Probabilities of the unit bins around y (N, C, H, W), in fp32."""
        with torch.autocast(y.device.type, enabled=False):
            n, c, h, w = y.shape
            v = y.float().permute(1, 0, 2, 3).reshape(c, 1, -1)
            lower = self.logits_cdf(v - 0.5)
            upper = self.logits_cdf(v + 0.5)
            # Subtract in the sigmoid's flat tail: 1 - s(x) = s(-x) keeps the precision.
            sign = -torch.sign(lower + upper).detach()
            p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
            p = p.reshape(c, n, h, w).permute(1, 0, 2, 3)
        return p.clamp_min(LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def update_tables(self, max_radius: int = 512, tail: float = 1e-9) -> None:
        """Integer pmf tables over [-R, R] for the entropy coder, R covering all but ``tail``
        of every channel's mass. Integers, so encoder and decoder share them bit for bit."""
        c = self.channels
        grid = torch.arange(-max_radius, max_radius + 1, dtype=torch.float32)
        v = grid.expand(c, 1, -1).contiguous()
        lower = torch.sigmoid(self.logits_cdf(v - 0.5))
        upper = torch.sigmoid(self.logits_cdf(v + 0.5))
        pmf = (upper - lower)[:, 0].double()
        significant = (pmf > tail).any(0).nonzero()
        radius = int(max(grid[significant].abs().max().item(), 1)) if len(significant) else 1
        centre = pmf[:, max_radius - radius:max_radius + radius + 1]
        counts = torch.clamp(torch.floor(centre / centre.sum(1, keepdim=True) * (1 << PMF_PRECISION)), min=1)
        self.pmf = counts.to(torch.int32)
        self.offset = torch.tensor(radius, dtype=torch.int32)


def gaussian_likelihood(y: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """P(bin around y) under N(0, scale^2) convolved with U(-1/2, 1/2), in fp32."""
    with torch.autocast(y.device.type, enabled=False):
        s = scales.float().clamp_min(SCALE_MIN)
        v = y.float().abs()
        upper = 0.5 * torch.erfc(-(0.5 - v) / (s * math.sqrt(2)))
        lower = 0.5 * torch.erfc(-(-0.5 - v) / (s * math.sqrt(2)))
        return (upper - lower).clamp_min(LIKELIHOOD_FLOOR)


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class ImageCodec(nn.Module):
    """Transforms, entropy models and quality gains of one learned codec."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        n, m, c = cfg.width, cfg.latent, cfg.channels
        self.g_a = nn.Sequential(_down(c, n), GDN(n), _down(n, n), GDN(n), _down(n, n), GDN(n), _down(n, m))
        self.g_s = nn.Sequential(_up(m, n), GDN(n, inverse=True), _up(n, n), GDN(n, inverse=True),
                                 _up(n, n), GDN(n, inverse=True), _up(n, c))
        levels = len(cfg.lmbdas)
        # Gains start spread so that higher levels already quantize more finely.
        start = torch.linspace(-1.0, 1.0, levels) if levels > 1 else torch.zeros(1)
        self.log_gain = nn.Parameter(start[:, None].repeat(1, m))
        self.log_inverse_gain = nn.Parameter(-start[:, None].repeat(1, m))
        if cfg.prior == "hyperprior":
            self.h_a = nn.Sequential(nn.Conv2d(m, n, 3, padding=1), nn.ReLU(), _down(n, n), nn.ReLU(), _down(n, n))
            self.h_s = nn.Sequential(_up(n, n), nn.ReLU(), _up(n, n), nn.ReLU(), nn.Conv2d(n, m, 3, padding=1))
            self.density = FactorizedDensity(n)
        else:
            self.density = FactorizedDensity(m)

    @property
    def levels(self) -> int:
        return len(self.cfg.lmbdas)

    def gains(self, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image gain and inverse gain, shaped (N, M, 1, 1), for level indices ``quality``."""
        return (self.log_gain[quality].exp()[:, :, None, None],
                self.log_inverse_gain[quality].exp()[:, :, None, None])

    def scales(self, z_hat: torch.Tensor) -> torch.Tensor:
        """The hyper-synthesis' Gaussian scale for every latent (softplus keeps it positive)."""
        return F.softplus(self.h_s(z_hat).float()).clamp_min(SCALE_MIN)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass on x in [0, 1] (N, C, H, W; H and W multiples of ``cfg.stride``):
        the reconstruction and the latents' likelihoods under the noise proxy."""
        gain, inverse_gain = self.gains(quality)
        y = self.g_a(x).float() * gain
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        decoded = RoundSTE.apply(y) if self.cfg.quantization == "mixed" else noisy
        out = {"x_hat": self.g_s(decoded * inverse_gain).float()}
        if self.cfg.prior == "hyperprior":
            z = self.h_a(y.abs()).float()
            z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
            out["likelihoods"] = [gaussian_likelihood(noisy, self.scales(z_noisy)), self.density.likelihood(z_noisy)]
        else:
            out["likelihoods"] = [self.density.likelihood(noisy)]
        return out

    def rate_distortion(self, x: torch.Tensor, quality: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image bits per pixel, mean squared error and the Lagrangian, averaged."""
        return self.loss_from(self(x, quality), x, quality)

    def loss_from(self, out: dict, x: torch.Tensor, quality: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = x.shape[2] * x.shape[3]
        bits = sum(-torch.log2(p).flatten(1).sum(1) for p in out["likelihoods"])
        bpp = bits / pixels
        mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
        lmbda = torch.tensor(self.cfg.lmbdas, device=x.device)[quality]
        loss = (bpp + lmbda * 255 ** 2 * mse).mean()
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "x_hat": out["x_hat"]}

    # -- coding (see pipelines.codec for the bitstream) ------------------------------------
    def update_tables(self) -> None:
        self.density.update_tables()

    @property
    def ready(self) -> bool:
        return self.density.pmf.numel() > 0


@register_model("codec", family="codec", config=CodecConfig)
def codec(cfg: CodecConfig) -> ImageCodec:
    return ImageCodec(cfg)
