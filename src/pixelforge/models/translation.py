"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired).

Both translate an image x of domain A into an image of domain B with a U-Net generator
and judge realism with a PatchGAN discriminator, which scores every overlapping N x N
patch (70 x 70 px with 3 layers) instead of the whole image: it models local texture
and leaves the global layout to the L1 or cycle terms.

pix2pix (Isola et al. 2017), paired data (x, y), a conditional D(x, .):

    D minimises  0.5 * [ l_D(D(x, y), real) + l_D(D(x, G(x)), fake) ]
    G minimises  l_G(D(x, G(x))) + lambda_L1 * || y - G(x) ||_1            (lambda_L1 = 100)

CycleGAN (Zhu et al. 2017), unpaired domains A and B, G: A -> B, F: B -> A, D_A, D_B:

    L_GAN(G, D_B) + L_GAN(F, D_A)
    + lambda_cyc * ( ||F(G(a)) - a||_1 + ||G(F(b)) - b||_1 )                cycle consistency
    + lambda_id * lambda_cyc * ( ||G(b) - b||_1 + ||F(a) - a||_1 )           identity (colour keeping)

with least-squares GAN losses by default; each D is trained on a pool of the last 50
generated images (Shrivastava et al. 2017) rather than only the newest ones. The GAN
losses themselves are :func:`pixelforge.models.gan.discriminator_loss` and
:func:`~pixelforge.models.gan.generator_loss` (``ns``, ``hinge``, ``lsgan``).

Generator: a U-Net of ``depth`` stride-2 4x4 convolutions down (LeakyReLU 0.2, instance
norm except at the outermost and innermost levels) and as many stride-2 transposed
convolutions up (ReLU, instance norm), each up level concatenating the down level of
the same resolution (the skip connections carry the input's fine detail straight to
the output), ending in tanh. With ``residual`` (the default for the gray, blur and lowres
pairings, whose input already is a rough version of the output) the generator returns
the input plus that tanh output, so it starts at the identity and only learns the
change: the colour of a grayscale photo, the detail of a blurred one. Any image size
works: the input is padded (replicate) to a multiple of ``2**depth`` and the output
cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from .registration import register_model


def _check_common(width: int, depth: int, d_width: int, d_layers: int, dropout: float, channels: dict) -> None:
    for name, c in channels.items():
        if c not in (1, 3):
            raise PixelforgeError(f"{name} must be 1 or 3 channels, not {c}")
    if width < 1 or d_width < 1:
        raise PixelforgeError("width and d_width must be positive")
    if not 2 <= depth <= 8:
        raise PixelforgeError(f"U-Net depth must be 2..8, not {depth}")
    if not 1 <= d_layers <= 5:
        raise PixelforgeError(f"PatchGAN layers must be 1..5, not {d_layers}")
    if not 0 <= dropout < 1:
        raise PixelforgeError(f"dropout must be in [0, 1), not {dropout}")


@dataclass
class Pix2PixConfig:
    in_channels: int = 3
    out_channels: int = 3
    # U-Net channels at the first level; each lower level doubles them (cap 8x)
    width: int = flag(32, help="U-Net channels at the first level", check="positive")
    # down/up levels: inputs are padded to a multiple of 2**depth
    depth: int = flag(5, help="U-Net levels", check="positive")
    d_width: int = flag(32, help="PatchGAN channels at the first layer", check="positive")
    # stride-2 layers in the PatchGAN: 3 -> 70x70 px patches
    d_layers: int = flag(3, help="PatchGAN stride-2 layers (3: 70x70 px patches)", check="positive")
    dropout: float = 0.0  # dropout in the three innermost up levels (pix2pix's noise source)
    # G(x) = x + U(x): the U-Net learns the change (x broadcast to the output channels)
    residual: bool = flag(
        False, help="G(x) = x + U-Net(x)", default_text="on for gray, blur, lowres; off for edges and folder pairs",
        negatable=True)

    def __post_init__(self):
        _check_common(self.width, self.depth, self.d_width, self.d_layers, self.dropout,
                      {"in_channels": self.in_channels, "out_channels": self.out_channels})
        if self.residual and self.in_channels not in (1, self.out_channels):
            raise PixelforgeError(f"a residual generator cannot add {self.in_channels}-channel inputs to "
                                  f"{self.out_channels}-channel outputs")


@dataclass
class CycleGANConfig:
    channels_a: int = 3
    channels_b: int = 3
    width: int = flag(32, help="U-Net channels at the first level", check="positive")
    depth: int = flag(4, help="U-Net levels", check="positive")
    d_width: int = flag(32, help="PatchGAN channels at the first layer", check="positive")
    d_layers: int = flag(3, help="PatchGAN stride-2 layers (3: 70x70 px patches)", check="positive")
    dropout: float = 0.0

    def __post_init__(self):
        _check_common(self.width, self.depth, self.d_width, self.d_layers, self.dropout,
                      {"channels_a": self.channels_a, "channels_b": self.channels_b})


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True)


class UNetGenerator(nn.Module):
    """U-Net with skip connections; (N, in, H, W) in [-1, 1] -> (N, out, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, depth: int = 5, dropout: float = 0.0,
                 residual: bool = False):
        super().__init__()
        self.depth = depth
        self.residual = residual
        self.chans = [width * min(2 ** i, 8) for i in range(depth)]
        downs = []
        c_prev = in_channels
        for i, c in enumerate(self.chans):
            layers: list[nn.Module] = [nn.Conv2d(c_prev, c, 4, 2, 1, bias=i in (0, depth - 1))]
            if 0 < i < depth - 1:
                layers.append(_norm(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            downs.append(nn.Sequential(*layers))
            c_prev = c
        self.downs = nn.ModuleList(downs)
        ups = []
        c_in = self.chans[-1]
        for i in range(depth - 2, -1, -1):  # up to level i, then concatenated with down level i
            c = self.chans[i]
            layers = [nn.ConvTranspose2d(c_in, c, 4, 2, 1, bias=False), _norm(c)]
            if dropout and i >= depth - 4:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU(inplace=True))
            ups.append(nn.Sequential(*layers))
            c_in = 2 * c
        self.ups = nn.ModuleList(ups)
        self.out = nn.Sequential(nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh())
        _init_weights(self)

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The down path's outputs, highest resolution first (the skips; the last is the bottleneck)."""
        feats = []
        for down in self.downs:
            x = down(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        feats = self.encode(x)
        u = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            u = torch.cat([up(u), skip], dim=1)
        y = self.out(u)
        if self.residual:  # the input plus a change in [-1, 1]; outputs may leave [-1, 1] slightly
            y = y + x.expand(-1, y.shape[1], -1, -1)
        return y[..., :h, :w] if (ph or pw) else y


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of logits, one per overlapping receptive-field patch of the input."""

    def __init__(self, in_channels: int, width: int = 32, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for n in range(1, layers + 1):
            c_out = width * min(2 ** n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), _norm(c_out), nn.LeakyReLU(0.2, inplace=True)]
            c = c_out
        seq.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.body = nn.Sequential(*seq)
        self.layers = layers
        _init_weights(self)

    @property
    def receptive_field(self) -> int:
        """Side in input pixels of the patch each output logit sees (70 for 3 layers)."""
        rf = 1
        for m in reversed([m for m in self.body if isinstance(m, nn.Conv2d)]):
            rf = rf * m.stride[0] + (m.kernel_size[0] - m.stride[0])
        return rf

    @property
    def min_size(self) -> int:
        """The smallest input side that leaves at least one patch: ``layers`` halvings, then
        two stride-1 4x4 convolutions that take one pixel each."""
        return 3 * 2 ** self.layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise PixelforgeError(f"images of {x.shape[-1]}x{x.shape[-2]} px are too small for a PatchGAN with "
                                  f"{self.layers} layers (needs at least {self.min_size} px); use fewer d_layers "
                                  "or a larger crop/size")
        return self.body(x)


class Pix2Pix(nn.Module):
    """G: A -> B and the conditional D(a, b) on channel-concatenated pairs."""

    def __init__(self, cfg: Pix2PixConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = UNetGenerator(cfg.in_channels, cfg.out_channels, cfg.width, cfg.depth, cfg.dropout,
                                       cfg.residual)
        self.discriminator = PatchDiscriminator(cfg.in_channels + cfg.out_channels, cfg.d_width, cfg.d_layers)


class CycleGAN(nn.Module):
    """G_AB, G_BA and one PatchGAN per domain."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        self.cfg = cfg
        self.g_ab = UNetGenerator(cfg.channels_a, cfg.channels_b, cfg.width, cfg.depth, cfg.dropout)
        self.g_ba = UNetGenerator(cfg.channels_b, cfg.channels_a, cfg.width, cfg.depth, cfg.dropout)
        self.d_a = PatchDiscriminator(cfg.channels_a, cfg.d_width, cfg.d_layers)
        self.d_b = PatchDiscriminator(cfg.channels_b, cfg.d_width, cfg.d_layers)


@register_model("pix2pix", family="translation", config=Pix2PixConfig,
                description="pix2pix: U-Net generator + conditional PatchGAN for paired image translation")
def build_pix2pix(cfg: Pix2PixConfig) -> Pix2Pix:
    return Pix2Pix(cfg)


@register_model("cyclegan", family="translation", config=CycleGANConfig,
                description="CycleGAN: two U-Net generators + two PatchGANs for unpaired translation")
def build_cyclegan(cfg: CycleGANConfig) -> CycleGAN:
    return CycleGAN(cfg)


def _init_weights(module: nn.Module) -> None:
    # pix2pix/CycleGAN init: N(0, 0.02) convolutions, N(1, 0.02) norm scales.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# -- CycleGAN's reconstruction terms ------------------------------------------------------

def cycle_loss(g_ab: nn.Module, g_ba: nn.Module, a: torch.Tensor, b: torch.Tensor,
               fake_b: torch.Tensor | None = None, fake_a: torch.Tensor | None = None) -> torch.Tensor:
    """||G_BA(G_AB(a)) - a||_1 + ||G_AB(G_BA(b)) - b||_1 (the translations may be passed in)."""
    fake_b = g_ab(a) if fake_b is None else fake_b
    fake_a = g_ba(b) if fake_a is None else fake_a
    return F.l1_loss(g_ba(fake_b).float(), a.float()) + F.l1_loss(g_ab(fake_a).float(), b.float())


def identity_loss(g_ab: nn.Module, g_ba: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||G_AB(b) - b||_1 + ||G_BA(a) - a||_1: a generator fed its own target domain should keep it."""
    if a.shape[1] != b.shape[1]:
        raise PixelforgeError("the identity loss needs domains with the same number of channels; use lambda_id 0")
    return F.l1_loss(g_ab(b).float(), b.float()) + F.l1_loss(g_ba(a).float(), a.float())
