"""Generative adversarial networks: DCGAN and its modern descendants.

A generator G maps noise z ~ N(0, I) (and optionally a class label y) to an image; a
discriminator D scores images as real or fake. They play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]            (Goodfellow et al. 2014)

Losses offered (all on raw logits ``d = D(.)``):
- ``ns``     non-saturating: D minimises softplus(-d_real) + softplus(d_fake);
             G minimises softplus(-d_fake) (strong gradients early, the DCGAN default).
- ``hinge``  D: relu(1 - d_real) + relu(1 + d_fake); G: -d_fake (SAGAN, BigGAN).
- ``lsgan``  least squares: D: (d_real - 1)^2 + d_fake^2; G: (d_fake - 1)^2 (Mao et al. 2017).
- ``wgan-gp`` critic: d_fake - d_real + 10 * (||grad D(x_hat)|| - 1)^2 on random
             interpolates x_hat; G: -d_fake (Gulrajani et al. 2017). Needs a D without
             batch norm.
Any loss can add the R1 penalty gamma/2 * E_x ||grad_x D(x)||^2 on real images
(Mescheder et al. 2018), lazily every k-th D step with weight k (Karras et al. 2020).

Architecture (Radford et al. 2016): G projects z with a linear layer to a 4x4 (7x7 for
28 px) map and doubles the resolution with stride-2 transposed convolutions, batch norm
and ReLU, ending in tanh (or, with ``upsample="resize"``, nearest upsampling and 3x3
convolutions); D mirrors it with stride-2 convolutions and LeakyReLU(0.2).
``arch="resnet"`` swaps both bodies for residual blocks in the SNGAN / BigGAN spirit (Miyato et al.
2018, Brock et al. 2019): G blocks are BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3 plus an upsampled
1x1 shortcut, D blocks ReLU-conv3x3-ReLU-conv3x3-avgpool plus a pooled 1x1 shortcut, and D ends in a
ReLU and a sum over positions (so its features are per channel, not per position).
Options: spectral norm in D (Miyato et al. 2018), class conditioning (label embedding
concatenated to z in G; a projection discriminator, Miyato & Koyama 2018), and for data
without labels the same conditioning on k-means clusters of the training images.
Self-supervised D (Chen et al. 2019), a stand-in for labels: with ``rotation_head`` D also
predicts by how many quarter turns an image was rotated (a 4-way linear head on its features);
training adds that cross-entropy on rotated real images to D's loss and, scaled down, on rotated
generated images to G's (:func:`rotated_quarters`). With ``minibatch_std`` D's logit gains a
learnt multiple of the standard deviation of its features over small groups of images (after
Karras et al. 2018), so a batch of generated images that look alike is easier to tell from a batch
of real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import PixelforgeError
from ..family import flag
from ..nn import grad_like_input, like_weights
from .registration import register_model

SIZES = {28: (7, 2), 32: (4, 3), 64: (4, 4)}  # image size -> (base resolution, number of 2x steps)
LOSSES = ("ns", "hinge", "lsgan", "wgan-gp")
D_NORMS = ("bn", "sn", "none")
UPSAMPLES = ("transposed", "resize")
ARCHS = ("dcgan", "resnet")
LABEL_INPUTS = ("concat", "bias")


def check_size(size: int) -> None:
    """Refuse an image size the architecture cannot make (it doubles a 4x4 or 7x7 map)."""
    if size not in SIZES:
        raise PixelforgeError(f"GAN image size {size} is not supported; use --size {' or '.join(map(str, SIZES))}")


@dataclass
class GANConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = flag(100, help="size of the latent vector z", check="positive")
    # channels at the highest hidden resolution; each 2x lower resolution doubles them (cap 8x)
    width: int = flag(64, help="base channel width", check="positive")
    num_classes: int = 0  # > 0: class-conditional G and projection D
    # how a conditional G takes the label: its embedding concatenated to z before the first layer
    # (concat), or a learnt per-class bias of the first feature map (bias: the same family of
    # functions, W [z; e(y)] = W_z z + W_e e(y), with fewer parameters and a smaller first product)
    label_input: str = flag("concat", help="conditional G: label embedding concatenated to z, or a per-class bias "
                                           "of its first feature map", choices=LABEL_INPUTS)
    # > 0: G and D condition on this many k-means clusters of the training images instead of
    # labels (pixelforge.data.clusters; train_gan chooses it); num_classes is then the number of
    # clusters, and sampling without labels draws clusters by their share of the training images
    clusters: int = 0
    # normalisation in D: batch norm, spectral norm or none
    d_norm: str = flag("bn", help="discriminator normalisation", choices=D_NORMS)
    # how G doubles its resolution: a stride-2 4x4 transposed convolution (DCGAN), or nearest
    # upsampling then a 3x3 convolution, free of the transposed kind's checkerboard pattern
    # (Odena et al. 2016) at 9/4 of the multiplications
    upsample: str = flag("transposed", help="generator upsampling", choices=UPSAMPLES)
    # dcgan: strided (transposed) convolutions; resnet: residual blocks in G and D (module docstring)
    arch: str = flag("dcgan", help="generator and discriminator architecture", choices=ARCHS)
    # a 4-way rotation classifier on D's features (self-supervision; train_gan sets it for --rotation)
    rotation_head: bool = False
    # D also sees how much its features vary across each group of this many images (the minibatch
    # standard deviation of Karras et al. 2018): a batch of look-alike fakes is then easy to spot
    minibatch_std: int = flag(0, help="group size of D's minibatch standard deviation feature, 0 for none",
                              check="non-negative")

    def __post_init__(self):
        check_size(self.image_size)
        if self.arch not in ARCHS:
            raise PixelforgeError(f"unknown GAN architecture {self.arch!r}; use one of {', '.join(ARCHS)}")
        if self.channels not in (1, 3):
            raise PixelforgeError(f"GANs take 1 or 3 channels, not {self.channels}")
        if self.d_norm not in D_NORMS:
            raise PixelforgeError(f"unknown discriminator norm {self.d_norm!r}; use one of {', '.join(D_NORMS)}")
        if self.label_input not in LABEL_INPUTS:
            raise PixelforgeError(f"unknown label input {self.label_input!r}; use one of {', '.join(LABEL_INPUTS)}")
        if self.upsample not in UPSAMPLES:
            raise PixelforgeError(f"unknown generator upsampling {self.upsample!r}; use one of {', '.join(UPSAMPLES)}")
        if self.minibatch_std < 0 or self.minibatch_std == 1:
            raise PixelforgeError(f"minibatch-std is a group size of at least 2 (0 for none), not {self.minibatch_std}")
        if self.latent_dim < 1 or self.width < 1 or self.num_classes < 0:
            raise PixelforgeError("latent_dim and width must be positive, num_classes >= 0")
        if self.clusters < 0 or (self.clusters and self.num_classes != self.clusters):
            raise PixelforgeError(f"clusters ({self.clusters}) must be >= 0 and, when set, equal num_classes "
                                  f"({self.num_classes}): a GAN conditions on labels or on clusters, not both")

    def level_channels(self) -> list[int]:
        """Channels from the base resolution up to the last hidden layer of G."""
        _, steps = SIZES[self.image_size]
        return [self.width * min(2 ** (steps - 1 - i), 8) for i in range(steps)]


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        base, _ = SIZES[cfg.image_size]
        chans = cfg.level_channels()
        concat = cfg.num_classes and cfg.label_input == "concat"
        in_dim = cfg.latent_dim * (2 if concat else 1)
        embed_dim = cfg.latent_dim if concat else chans[0] * base * base
        self.embed = nn.Embedding(cfg.num_classes, embed_dim) if cfg.num_classes else None
        if cfg.clusters:  # each cluster's share of the training images, set when training starts
            self.register_buffer("label_prior", torch.full((cfg.clusters,), 1.0 / cfg.clusters))
        self.project = nn.Linear(in_dim, chans[0] * base * base, bias=cfg.arch == "resnet")
        self.base_shape = (chans[0], base, base)
        if cfg.arch == "resnet":
            layers: list[nn.Module] = [_GBlock(c_in, c_out) for c_in, c_out in zip(chans, [*chans[1:], chans[-1]])]
            layers += [nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], cfg.channels, 3, 1, 1), nn.Tanh()]
        else:
            layers = [nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True)]
            for c_in, c_out in zip(chans, chans[1:]):
                layers += [*_upsampling(cfg.upsample, c_in, c_out, bias=False), nn.BatchNorm2d(c_out),
                           nn.ReLU(inplace=True)]
            layers += [*_upsampling(cfg.upsample, chans[-1], cfg.channels, bias=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        # in a tuple, so that it is not registered (and saved) a second time as a submodule
        self._first_conv = (next(m for m in self.body.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))),)
        _init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            h = self.project(z)
        elif labels is None:
            raise PixelforgeError("this generator is class-conditional: give labels")
        elif self.cfg.label_input == "concat":
            h = self.project(torch.cat([z, self.embed(labels)], dim=1))
        else:
            h = self.project(z)
            h = h + self.embed(labels).to(h.dtype)
        h = h.view(z.shape[0], *self.base_shape)
        return self.body(like_weights(h, self._first_conv[0]))


def _upsampling(kind: str, c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    if kind == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]


class Discriminator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        base, _ = SIZES[cfg.image_size]
        chans = list(reversed(cfg.level_channels()))  # widest resolution first
        sn = spectral_norm if cfg.d_norm == "sn" else (lambda m: m)
        if cfg.arch == "resnet":
            widths = [cfg.channels, *chans]
            layers: list[nn.Module] = [_DBlock(c_in, c_out, sn, cfg.d_norm == "bn", first=i == 0)
                                       for i, (c_in, c_out) in enumerate(zip(widths, widths[1:]))]
            layers += [nn.ReLU(), _SumOverPositions()]
            features = chans[-1]
        else:
            layers = [sn(nn.Conv2d(cfg.channels, chans[0], 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            for c_in, c_out in zip(chans, chans[1:]):
                layers.append(sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=cfg.d_norm != "bn")))
                if cfg.d_norm == "bn":
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            features = chans[-1] * base * base
        self.body = nn.Sequential(*layers)
        self.head = sn(nn.Linear(features, 1))
        # the head's weight on the minibatch standard deviation: a linear term of the logit only, where
        # Karras et al. add it as a feature map before D's last convolution (the projection term and the
        # rotation head see only the features); starts at 0, learnt like the rest, outside spectral norm
        self.std_weight = nn.Parameter(torch.zeros(1)) if cfg.minibatch_std else None
        self.embed = sn(nn.Embedding(cfg.num_classes, features)) if cfg.num_classes else None
        self.rotation = sn(nn.Linear(features, 4)) if cfg.rotation_head else None
        _init_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, rotation: bool = False) -> torch.Tensor:
        """Real/fake logits, one per image; with ``rotation=True`` the rotation head's 4 logits
        per image instead (labels are then not needed)."""
        h = grad_like_input(self.body(x)).flatten(1)
        if rotation:
            if self.rotation is None:
                raise PixelforgeError("this discriminator has no rotation head")
            return self.rotation(h)
        out = self.head(h).squeeze(1)
        if self.std_weight is not None:
            out = out + self.std_weight * minibatch_std(h, self.cfg.minibatch_std).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise PixelforgeError("this discriminator is class-conditional: give labels")
            # projection term <embed(y), features>, in fp32: under autocast the features are bf16,
            # and a product of bf16 and fp32 tensors takes a slow mixed-precision path on the CPU
            out = out + (h.float() * self.embed(labels)).sum(dim=1)
        return out


def minibatch_std(features: torch.Tensor, group_size: int) -> torch.Tensor:
    """One fp32 column: the standard deviation of each feature over a group of ``group_size``
    images, averaged over the features, the same for every image of the group."""
    n, g = features.shape[0], group_size
    if n % g:
        raise PixelforgeError(f"--minibatch-std {g} needs batches (per process and micro-batch) that divide into "
                              f"groups of {g}; this one has {n} images")
    grouped = features.float().view(n // g, g, -1)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # by hand: aten::var takes a slow path here on the CPU
    std = (centred.square().mean(dim=1) + 1e-8).sqrt().mean(dim=1)  # one per group
    return std.repeat_interleave(g).unsqueeze(1)


class _GBlock(nn.Module):
    """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus an upsampled 1x1 shortcut: doubles the resolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.residual = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                                      nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                      nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class _DBlock(nn.Module):
    """(ReLU)-conv3x3-ReLU-conv3x3-avgpool, plus a pooled 1x1 shortcut: halves the resolution. The first
    block takes the image itself, so it starts with the convolution (no ReLU of pixel values)."""

    def __init__(self, c_in: int, c_out: int, sn, batch_norm: bool, first: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.residual = nn.Sequential(*([] if first else [nn.ReLU()]), sn(nn.Conv2d(c_in, c_out, 3, 1, 1)), norm(c_out),
                                      nn.ReLU(), sn(nn.Conv2d(c_out, c_out, 3, 1, 1)), norm(c_out), nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), sn(nn.Conv2d(c_in, c_out, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class _SumOverPositions(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


class GAN(nn.Module):
    """The generator/discriminator pair, built from one :class:`GANConfig`."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)

    def sample_latent(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, generator=generator, device=device)


@register_model("dcgan", family="gan", config=GANConfig,
                description="DCGAN generator/discriminator for 28, 32 or 64 px, optionally conditional")
def build_dcgan(cfg: GANConfig) -> GAN:
    return GAN(cfg)


def _init_weights(module: nn.Module) -> None:
    # DCGAN init: N(0, 0.02) for conv/linear weights, N(1, 0.02) for batch-norm scales. Residual nets
    # use Xavier-uniform convolutions and linear layers instead (SNGAN's), which keep the activations'
    # scale through many layers. Spectral-norm layers keep torch's default init: their ``weight`` is
    # recomputed from a parametrised original, so writing into it changes nothing (and spectral norm
    # rescales whatever the init is).
    resnet = module.cfg.arch == "resnet"
    for m in module.modules():
        if resnet and isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# -- losses ------------------------------------------------------------------------------

def rotated_quarters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch cut into four parts turned by 0, 90, 180 and 270 degrees, and each image's
    number of quarter turns (the rotation head's target). Images must be square."""
    parts = x.tensor_split(4)
    turned = torch.cat([torch.rot90(part, k, dims=(2, 3)) for k, part in enumerate(parts)])
    turns = torch.cat([torch.full((len(part),), k, dtype=torch.long, device=x.device) for k, part in enumerate(parts)])
    if x.is_contiguous(memory_format=torch.channels_last):  # rot90 and cat give NCHW
        turned = turned.contiguous(memory_format=torch.channels_last)
    return turned, turns


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    d_real, d_fake = d_real.float(), d_fake.float()
    if kind == "ns":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if kind == "lsgan":
        return ((d_real - 1) ** 2).mean() + (d_fake ** 2).mean()
    if kind == "wgan-gp":
        return d_fake.mean() - d_real.mean()
    raise PixelforgeError(f"unknown GAN loss {kind!r}; use one of {', '.join(LOSSES)}")


def generator_loss(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    d_fake = d_fake.float()
    if kind == "ns":
        return F.softplus(-d_fake).mean()
    if kind in ("hinge", "wgan-gp"):
        return -d_fake.mean()
    if kind == "lsgan":
        return ((d_fake - 1) ** 2).mean()
    raise PixelforgeError(f"unknown GAN loss {kind!r}; use one of {', '.join(LOSSES)}")


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP: E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = discriminator(x_hat, labels)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||_2^2] on real images only, which keeps D
    from growing steep around the data; StyleGAN2 applies it lazily, every few D steps."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x, labels).float().sum(), x, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()
