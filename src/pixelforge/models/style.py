"""Perceptual feature backbones for neural style transfer and texture synthesis (Gatys et al. 2015/2016).

Objective (optimised over the pixels of an image x in [0, 1]; see
:mod:`pixelforge.pipelines.style`): with F_l(x) the (C_l, H_l*W_l) matrix of the feature maps of
layer l of a fixed network,

- content loss   L_c(x, c) = mean_ij (F_L(x) - F_L(c))_ij^2              at one deep layer L,
- Gram matrix    G_l(x) = F_l(x) F_l(x)^T / (H_l W_l)                     (C_l x C_l, channel co-activations),
- style loss     L_s(x, s) = sum_l w_l mean_ij (G_l(x) - G_l(s))_ij^2     over several layers, sum_l w_l = 1,
- total variation TV(x) = mean (x[i+1, j] - x[i, j])^2 + mean (x[i, j+1] - x[i, j])^2,

  L(x) = alpha L_c(x, c) + beta L_s(x, s) + gamma TV(x).

The Gram matrix throws away *where* a feature fires and keeps only which features fire together,
which is what makes it a description of style/texture rather than of the scene. Texture synthesis is
the same problem with alpha = 0.

Backbones (all take (N, 3, H, W) images in [0, 1] and return ``{layer name: feature map}``):

- ``offline`` (:class:`RandomFeatures`, the default): needs no file. A five-level hierarchy of
  3x3 convolutions with *fixed random* weights drawn from a seeded generator (so nothing has to ship),
  ReLU, and 2x2 average pooling between levels, so the levels see the image at scales 1, 1/2, ...,
  1/16; the first level additionally mixes 3x3, 5x5 and 7x7 (dilated 3x3) filters. Ustyuzhaninov et al.
  (2017, "What does it take to generate natural textures?") showed that Gram statistics of random
  multi-scale filters already synthesise convincing textures, and He et al. (2016, "A powerful random
  network") that random deep networks transfer style when their activations are normalised. We
  normalise each channel to unit RMS on a fixed pink-noise (1/f spectrum, like natural images)
  calibration image, so every layer contributes on the same scale.
- ``vgg19`` / ``vgg16`` (:class:`VGGFeatures`): the ImageNet-trained VGG feature stacks (Simonyan &
  Zisserman 2014) that Gatys et al. used, built here without torchvision. The weights are torchvision's
  state-dict files (keys ``features.N.weight/bias``); only the ``features.*`` entries up to the deepest
  layer in use are needed, so a truncated file works. Max pooling is replaced by average pooling (Gatys
  et al.: smoother gradients). Weights are looked for in this order: the ``path`` argument,
  ``$PIXELFORGE_VGG19_WEIGHTS`` / ``$PIXELFORGE_VGG16_WEIGHTS``, ``<cache>/weights/<file>``, then a
  download into that cache file from download.pytorch.org (or ``$PIXELFORGE_WEIGHTS_MIRROR/<file>``),
  checked against its SHA-256 before it is kept. Files are read with ``torch.load(weights_only=True)``.

Layer names: VGG uses ``relu{block}_{index}`` (and ``conv{block}_{index}``); the offline backbone
uses ``r1`` ... ``r5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..colour import match_chroma, match_chroma_histogram
from ..errors import PixelforgeError
from ..family import flag
from ..nn.memory_format import ReflectionPad2d
from .registration import register_model
from ..runs import read_weights_file
from ..weights import ExternalWeights

BACKBONES = ("offline", "vgg19", "vgg16")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's cfg "E" (VGG-19) and "D" (VGG-16): channels, "M" = pool.
VGG_CONFIGS = {
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
VGG_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
VGG_BASE_URL = "https://download.pytorch.org/models/"
# torch hub's convention: the file name carries the first 8 hex digits of the file's SHA-256, and
# torch hub checks downloads against exactly that prefix. We do the same; pass a full
# ``sha256:<64 hex>`` spec (``hash_spec=``) to pin the whole digest.
VGG_HASH_SPECS = {"vgg19": "sha256:dcbb9e9d", "vgg16": "sha256:397923af"}
WEIGHTS_ENVS = {"vgg19": "PIXELFORGE_VGG19_WEIGHTS", "vgg16": "PIXELFORGE_VGG16_WEIGHTS"}

# Gatys et al. 2016: style from relu1_1 ... relu5_1, content from relu4_2.
VGG_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_CONTENT_LAYER = "relu4_2"
OFFLINE_STYLE_LAYERS = ("r1", "r2", "r3", "r4", "r5")
OFFLINE_CONTENT_LAYER = "r3"


# ----------------------------------------------------------------------------- losses

def gram_matrix(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, C): G = F F^T / (H W), F the (C, H*W) matrix of each image's features."""
    n, c, h, w = features.shape
    if features.stride(1) == 1 and c > 1:  # channels_last: (N, H*W, C) is a view, no copy
        flat = features.permute(0, 2, 3, 1).reshape(n, h * w, c).float()
        return flat.transpose(1, 2) @ flat / (h * w)
    flat = features.reshape(n, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (h * w)


def style_loss(features: dict[str, Tensor], target_grams: dict[str, Tensor],
               weights: dict[str, float] | None = None) -> Tensor:
    """sum_l w_l mean((G_l(x) - G_l^target)^2); equal weights summing to 1 by default."""
    weights = weights or {name: 1.0 / len(target_grams) for name in target_grams}
    total = None
    for name, target in target_grams.items():
        term = weights[name] * F.mse_loss(gram_matrix(features[name]), target.expand(features[name].shape[0], -1, -1))
        total = term if total is None else total + term
    return total


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """mean((F_L(x) - F_L(c))^2)."""
    return F.mse_loss(features.float(), target.float())


def total_variation(images: Tensor) -> Tensor:
    """Mean squared difference of vertically and horizontally neighbouring pixels."""
    return (images[:, :, 1:, :] - images[:, :, :-1, :]).pow(2).mean() + \
        (images[:, :, :, 1:] - images[:, :, :, :-1]).pow(2).mean()


COLOUR_DIRECTIONS = 16  # the R, G, B axes and 13 fixed random directions of colour space


def _colour_directions(count: int = COLOUR_DIRECTIONS) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    extra = torch.randn(max(0, count - 3), 3, generator=generator)
    return torch.cat([torch.eye(3), extra / extra.norm(dim=1, keepdim=True)])[:count]


def quantile_distance(a: Tensor, b: Tensor, p: int) -> Tensor:
    """mean over rows of mean_j |A^-1(t_j) - B^-1(t_j)|^p: the p-th power of the 1-D p-Wasserstein distance
    between each row of ``a`` (K, n) and of ``b`` (K, m), from their sorted values; the longer one is
    resampled (linear interpolation) at the min(n, m) quantile levels t_j = (j + 1/2) / min(n, m)."""
    a, b = a.sort(dim=1).values, b.sort(dim=1).values
    m = min(a.shape[1], b.shape[1])

    def resample(v: Tensor) -> Tensor:
        n = v.shape[1]
        if n == m:
            return v
        pos = ((torch.arange(m, dtype=v.dtype, device=v.device) + 0.5) / m * n - 0.5).clamp(0, n - 1)
        lo, frac = pos.floor().long(), pos - pos.floor()
        return v[:, lo] * (1 - frac) + v[:, (lo + 1).clamp(max=n - 1)] * frac

    return (resample(a) - resample(b)).abs().pow(p).mean()


def colour_loss(images: Tensor, references: Tensor) -> Tensor:
    """Sliced 1-Wasserstein distance between the RGB pixel distributions of ``images`` (N, 3, H, W) and
    ``references`` (N or 1, 3, h, w; any pixel count): the pixels projected on fixed directions of colour
    space (the three channel axes among them), compared by :func:`quantile_distance`. Zero when the colour
    histograms agree, whatever the layout: the colour statistics the backbones' zero-mean filters barely see."""
    n = images.shape[0]
    directions = _colour_directions().to(images.device)
    mine = directions @ images.float().reshape(n, 3, -1)
    theirs = (directions @ references.float().reshape(references.shape[0], 3, -1)).expand(n, -1, -1)
    return quantile_distance(mine.flatten(0, 1), theirs.flatten(0, 1), 1)


# ----------------------------------------------------------------------------- backbones

class _Backbone(nn.Module):
    """Common interface: ``forward(images, layers)`` -> {name: features}; frozen, eval mode."""

    name: str
    layer_names: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_layer: str

    def _freeze(self) -> None:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        for b in self.buffers():
            b.requires_grad_(False)

    def check_layers(self, layers) -> None:
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise PixelforgeError(f"the {self.name} backbone has no layer {unknown[0]!r}; "
                                  f"its layers are {', '.join(self.layer_names)}")

    def min_side(self, layers) -> int:
        """The shortest image side (px) whose features reach every one of ``layers``: each 2x2 pooling
        before the deepest of them halves the image, and a side below 1 px has no features."""
        self.check_layers(layers)
        return 2 ** max(_downsamplings(self.name, name) for name in layers)


class RandomFeatures(_Backbone):
    """The offline backbone: fixed seeded random multi-scale convolutions (see the module docstring)."""

    name = "offline"
    style_layers = OFFLINE_STYLE_LAYERS
    content_layer = OFFLINE_CONTENT_LAYER
    layer_names = OFFLINE_STYLE_LAYERS

    def __init__(self, seed: int = 0, widths: tuple[int, ...] = (48, 96, 128, 192, 256), calibration_size: int = 128):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        first = widths[0] // 3
        # Level 1: three receptive-field sizes side by side (3x3, 5x5, 3x3 dilated by 3 = 7x7).
        self.stem = nn.ModuleList([nn.Conv2d(3, first, 3, padding=1), nn.Conv2d(3, first, 5, padding=2),
                                   nn.Conv2d(3, widths[0] - 2 * first, 3, padding=3, dilation=3)])
        self.levels = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in zip(widths[:-1], widths[1:]))
        for conv in [*self.stem, *self.levels]:
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            weight = torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
            # Zero-mean filters respond to structure (edges, blobs), not to the mean brightness.
            weight -= weight.mean(dim=(1, 2, 3), keepdim=True)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(torch.rand(conv.bias.shape, generator=generator) * 0.1)
        for i in range(len(widths)):
            self.register_buffer(f"scale{i}", torch.ones(1, widths[i], 1, 1))
        # channels_last: about twice as fast on the CPU, for inference (AdaIN's encoder turns it on). Off by
        # default: under an optimisation (Gatys) its oneDNN kernels are not bitwise reproducible from run to
        # run, which L-BFGS amplifies, and the backward pass, most of the time there, gains nothing.
        self.channels_last = False
        self._calibrate(pink_noise(calibration_size, seed + 1))
        self._freeze()

    def _stem_kernel(self) -> tuple[Tensor, Tensor]:
        """The three stem convolutions as one 7x7 convolution (each kernel centred in it; the dilated 3x3
        on every third tap), the level's positive scale folded in: relu(z) * s = relu(z * s) for s > 0.
        One convolution over the 3 input channels instead of three, and no concatenation: the same
        features at half the cost."""
        weight = self.stem[0].weight.new_zeros(self.scale0.shape[1], 3, 7, 7)
        small, medium, dilated = self.stem
        a, b = small.out_channels, small.out_channels + medium.out_channels
        weight[:a, :, 2:5, 2:5] = small.weight
        weight[a:b, :, 1:6, 1:6] = medium.weight
        weight[b:, :, 0:7:3, 0:7:3] = dilated.weight
        scale = self.scale0.view(-1)
        return weight * scale.view(-1, 1, 1, 1), torch.cat([c.bias for c in self.stem]) * scale

    def _raw(self, images: Tensor, layers) -> dict[str, Tensor]:
        x = (images - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out: dict[str, Tensor] = {}
        deepest = max(self.layer_names.index(name) for name in layers)
        x = F.relu(F.conv2d(x, *self._stem_kernel(), padding=3))
        out["r1"] = x
        for i, conv in enumerate(self.levels[:deepest], start=1):
            scale = getattr(self, f"scale{i}").view(-1)
            x = F.relu(F.conv2d(F.avg_pool2d(x, 2), conv.weight * scale.view(-1, 1, 1, 1), conv.bias * scale,
                                padding=1))
            out[f"r{i + 1}"] = x
        return {name: out[name] for name in layers}

    @torch.no_grad()
    def _calibrate(self, image: Tensor) -> None:
        # Level by level (each scale depends on the ones below): unit RMS per channel on pink noise.
        for i, name in enumerate(self.layer_names):
            features = self._raw(image, [name])[name]
            rms = features.pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
            getattr(self, f"scale{i}").mul_(1.0 / rms.clamp_min(1e-6))

    def forward(self, images: Tensor, layers=None) -> dict[str, Tensor]:
        layers = tuple(layers or self.layer_names)
        self.check_layers(layers)
        return self._raw(images, layers)


def pink_noise(size: int, seed: int) -> Tensor:
    """A (1, 3, size, size) image in [0, 1] with a 1/f amplitude spectrum (natural-image-like statistics)."""
    generator = torch.Generator().manual_seed(seed)
    freq = torch.fft.fftfreq(size)
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2).clamp_min(1.0 / size)
    noise = torch.randn(3, size, size, generator=generator)
    image = torch.fft.ifft2(torch.fft.fft2(noise) / radius).real
    image = (image - image.mean()) / image.std()
    return (0.5 + 0.2 * image).clamp(0, 1).unsqueeze(0)


def vgg_layer_names(arch: str) -> list[tuple[str, int]]:
    """[(name, index in ``features``)] for every conv, relu and pool layer of ``arch``."""
    names, block, index, i = [], 1, 1, 0
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            names.append((f"pool{block}", i))
            block, index, i = block + 1, 1, i + 1
        else:
            names += [(f"conv{block}_{index}", i), (f"relu{block}_{index}", i + 1)]
            index, i = index + 1, i + 2
    return names


class VGGFeatures(_Backbone):
    """VGG-19/16 ``features`` up to the deepest of ``layers`` (random weights; see :func:`load_vgg`).

    Module names match torchvision's state dict (``features.N.weight``). Inputs are in [0, 1] and
    normalised with the ImageNet mean and std inside.
    """

    def __init__(self, arch: str = "vgg19", layers=None, pool: str = "avg"):
        super().__init__()
        if arch not in VGG_CONFIGS:
            raise PixelforgeError(f"unknown VGG {arch!r}; choose vgg19 or vgg16")
        self.name = arch
        self.style_layers = VGG_STYLE_LAYERS
        self.content_layer = VGG_CONTENT_LAYER
        all_layers = vgg_layer_names(arch)
        self.layer_names = tuple(name for name, _ in all_layers)
        self._index = dict(all_layers)
        layers = tuple(layers or (*VGG_STYLE_LAYERS, VGG_CONTENT_LAYER))
        self.check_layers(layers)
        self.available = layers
        depth = max(self._index[name] for name in layers) + 1
        modules: list[nn.Module] = []
        channels = 3
        for v in VGG_CONFIGS[arch]:
            if len(modules) >= depth:
                break
            if v == "M":
                modules.append(nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2))
            else:
                modules += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
                channels = v
        self.features = nn.Sequential(*modules[:depth])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._freeze()

    def forward(self, images: Tensor, layers=None) -> dict[str, Tensor]:
        layers = tuple(layers or self.available)
        self.check_layers(layers)
        wanted = {self._index[name]: name for name in layers}
        if max(wanted) >= len(self.features):
            raise PixelforgeError(f"this {self.name} was built only up to features.{len(self.features) - 1}; "
                                  f"build it with layers={layers}")
        x = (images - self.mean) / self.std
        out = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                # ReLU is not in-place here, so a conv output kept for a layer is not overwritten.
                out[wanted[i]] = x
            if len(out) == len(wanted):
                break
        return out


# ----------------------------------------------------------------------------- VGG weights

VGG_WEIGHTS = {arch: ExternalWeights(arch, VGG_FILES[arch], VGG_BASE_URL + VGG_FILES[arch], VGG_HASH_SPECS[arch],
                                     WEIGHTS_ENVS[arch], argument="pass --weights PATH (weights= in Python)",
                                     allow_prefix=True)
               for arch in VGG_FILES}


def locate_vgg_weights(arch: str, path=None, download: bool = True, hash_spec: str | None = None) -> Path:
    """The weights file for ``arch`` (see :mod:`pixelforge.weights`)."""
    return VGG_WEIGHTS[arch].locate(path, download, hash_spec)


def load_vgg(arch: str = "vgg19", path=None, *, layers=None, download: bool = True,
             hash_spec: str | None = None, pool: str = "avg") -> VGGFeatures:
    """A :class:`VGGFeatures` with ImageNet weights (torchvision's file format), frozen, on the CPU.

    Only the ``features.*`` tensors of the layers up to the deepest of ``layers`` are read; other keys
    (the classifier, deeper layers) are ignored, so a truncated state dict is enough.
    """
    if arch not in VGG_CONFIGS:
        raise PixelforgeError(f"unknown VGG {arch!r}; choose vgg19 or vgg16")
    model = VGGFeatures(arch, layers=layers, pool=pool)
    weights = locate_vgg_weights(arch, path, download, hash_spec)
    state = read_weights_file(weights, arch)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    mismatched = [f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}"
                  for key, value in expected.items() if key in state and state[key].shape != value.shape]
    if missing or mismatched:
        problem = (f"{len(missing)} missing keys (e.g. {missing[0]})" if missing
                   else f"{len(mismatched)} shape mismatches (e.g. {mismatched[0]})")
        raise PixelforgeError(f"{weights} is not a {arch} state dict for layers up to "
                              f"features.{len(model.features) - 1}: {problem}")
    model.load_state_dict({key: state[key].float() for key in expected})
    model._freeze()
    return model


def build_backbone(name: str = "offline", weights=None, *, layers=None, download: bool = True,
                   seed: int = 0) -> _Backbone:
    """The backbone called ``name`` (one of :data:`BACKBONES`)."""
    if name == "offline":
        if weights is not None:
            raise PixelforgeError("the offline backbone has no weights file; --weights is for vgg19/vgg16")
        return RandomFeatures(seed=seed)
    if name in VGG_CONFIGS:
        return load_vgg(name, weights, layers=layers, download=download)
    raise PixelforgeError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


# ----------------------------------------------------------------------------- feed-forward stylizer (Johnson)

@dataclass
class StylizerConfig:
    """Johnson et al. (2016) image transformation network, sized by ``widths``, ``blocks``, ``shuffle``.

    Johnson's own net is widths (32, 64, 128), 5 blocks, 9x9 outer kernels, shuffle 1 (every outer
    layer at full resolution): 1.6 s per 512x512 image on this machine's two CPU cores. The default
    here first folds 2x2 pixel blocks into channels (space-to-depth, undone by a pixel shuffle at the
    end), so no layer runs at full resolution, with 5x5 outer kernels: ~0.1 s (docs/style_transfer.md).
    """

    # at 1, 1/2 and 1/4 of the (shuffled) resolution
    widths: tuple[int, int, int] = flag((32, 64, 64), help="channels at 1/1, 1/2, 1/4 of the (shuffled) resolution")
    blocks: int = flag(4, help="residual blocks")  # residual blocks at the lowest resolution
    # kernel of the first and last convolution
    outer_kernel: int = flag(5, help="first/last convolution kernel", check="positive")
    # >1: space-to-depth by this factor first, depth-to-space at the end (1 = Johnson's)
    shuffle: int = flag(
        2, help="space-to-depth factor; 1 = Johnson's full-resolution first/last layers", choices=(1, 2, 4))

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise PixelforgeError(f"stylizer widths must be three positive numbers, not {self.widths}")
        if self.blocks < 0 or self.outer_kernel < 1 or self.outer_kernel % 2 == 0:
            raise PixelforgeError("stylizer blocks must be >= 0 and outer_kernel an odd number")
        if self.shuffle not in (1, 2, 4):
            raise PixelforgeError(f"stylizer shuffle must be 1, 2 or 4, not {self.shuffle}")


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding (no dark borders) + convolution."""
    return nn.Sequential(ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class _ConvNormReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False):
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [*_conv(cin, cout, kernel, stride), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_ConvNormReLU(channels, channels, 3), *_conv(channels, channels, 3),
                                  nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Image in [0, 1] -> stylised image in [0, 1], any size (padded to a multiple of 4 inside).

    conv(k) -> IN -> ReLU, two stride-2 conv/IN/ReLU downsamplings, ``blocks`` residual blocks
    (conv-IN-ReLU-conv-IN + skip), two nearest-neighbour x2 upsamplings each followed by
    conv/IN/ReLU (no transposed convolutions: they leave checkerboard artefacts, Odena et al. 2016),
    and a last conv(k) to RGB squashed by a sigmoid. Instance normalisation (Ulyanov et al. 2016)
    makes the output independent of each image's contrast, which is what lets one network stylise
    every photo alike.
    """

    family_kind = "feed-forward"
    default_precision = "fp32"  # what the pipelines run it in unless told: its measured results are fp32's

    def __init__(self, cfg: StylizerConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.widths
        k, r = cfg.outer_kernel, cfg.shuffle
        self.multiple = 4 * r  # the input sides are padded to a multiple of this
        self.net = nn.Sequential(
            *([nn.PixelUnshuffle(r)] if r > 1 else []),
            _ConvNormReLU(3 * r * r, c1, k), _ConvNormReLU(c1, c2, 3, 2), _ConvNormReLU(c2, c3, 3, 2),
            *[_ResidualBlock(c3) for _ in range(cfg.blocks)],
            _ConvNormReLU(c3, c2, 3, upsample=True), _ConvNormReLU(c2, c1, 3, upsample=True),
            *_conv(c1, 3 * r * r, k), *([nn.PixelShuffle(r)] if r > 1 else []), nn.Sigmoid())

    def core(self, x: Tensor) -> Tensor:
        """The network on an input in [-0.5, 0.5] whose sides are multiples of ``self.multiple`` (ONNX export)."""
        return self.net(x)

    def forward(self, images: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        # Sides padded up to a multiple of ``multiple``, and to two of them (reflection padding at the
        # deepest level needs 2 x 2 positions).
        ph, pw = (max(2 * self.multiple, s + -s % self.multiple) - s for s in (h, w))
        x = images - 0.5
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return self.net(x)[..., :h, :w]


@register_model("johnson", family="style", config=StylizerConfig,
                description="fast feed-forward style transfer network (Johnson et al. 2016, instance norm)")
def build_johnson(cfg: StylizerConfig) -> TransformerNet:
    return TransformerNet(cfg)


# ----------------------------------------------------------------------------- arbitrary style (AdaIN)

def channel_stats(features: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean and standard deviation over the positions: two (N, C, 1, 1) tensors."""
    flat = features.float().flatten(2)
    mean = flat.mean(-1)[..., None, None]
    std = (flat.var(-1, unbiased=False) + eps).sqrt()[..., None, None]
    return mean, std


def channel_correlations(features: Tensor, eps: float = 1e-5) -> Tensor:
    """Per image, the (C, C) correlation matrix of the channels over positions (fp32): which channels fire
    together, with each channel's mean and spread divided out, so a loss on it adds the cross-channel
    structure that :func:`channel_stats` leaves out, on a scale (-1 to 1) of its own."""
    flat = features.float().flatten(2)
    centred = flat - flat.mean(-1, keepdim=True)
    covariance = centred @ centred.transpose(1, 2) / flat.shape[-1]
    std = (covariance.diagonal(dim1=1, dim2=2) + eps).sqrt()
    return covariance / (std[:, :, None] * std[:, None, :])


def adain(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017):

        AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y)

    per image and channel: the content features get the style features' mean and standard deviation."""
    c_mean, c_std = channel_stats(content, eps)
    s_mean, s_std = channel_stats(style, eps)
    return (content.float() - c_mean) / c_std * s_std + s_mean


COLOUR_MATCHES = ("rgb", "chroma", "histogram")  # AdaINConfig.colour_match
COLOUR_MATCHERS = {"chroma": match_chroma, "histogram": match_chroma_histogram}  # AdaINConfig.colour_match but rgb

MIN_STYLE_SIDE = 16  # px: the smallest side an AdaIN style image is read at
CONTENT_SCALES = (0.25, 1.0)  # AdaINConfig.content_scale's range
UPSAMPLINGS = ("nearest", "bilinear")  # AdaINConfig.upsample


def check_content_scale(scale: float) -> float:
    if not CONTENT_SCALES[0] <= scale <= CONTENT_SCALES[1]:
        raise PixelforgeError(f"AdaIN content scale must be between {CONTENT_SCALES[0]:g} and {CONTENT_SCALES[1]:g}, "
                              f"not {scale}")
    return float(scale)


def at_scale(run, images: Tensor, scale: float) -> Tensor:
    """``run(images)`` (an N x C x H x W batch in [0, 1]) made at ``scale`` times their size (antialiased) and
    enlarged back to it (bilinear): the stylisation's strokes come out 1 / scale times larger."""
    if scale == 1:
        return run(images)
    h, w = images.shape[-2:]
    small = F.interpolate(images, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                          antialias=True, align_corners=False)
    return F.interpolate(run(small), size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def whiten_colour(content: Tensor, style: Tensor, eps: float = 1e-5, relative_floor: float = 0.0) -> Tensor:
    """The whitening and colouring transform (Li et al. 2017), per image:

        WCT(x, y) = E_y D_y^(1/2) E_y^T  E_x D_x^(-1/2) E_x^T (x - mu(x)) + mu(y)

    with E D E^T the eigendecomposition of a feature map's channel covariance: the content features
    get the style features' whole covariance (so their Gram matrix), not only each channel's spread
    as with :func:`adain`. As in the paper, directions with an eigenvalue under ``eps`` are left out, and
    with ``relative_floor`` > 0 also those under that fraction of the largest eigenvalue (directions of
    almost no variance, which whitening would scale up most).
    The covariances are fp32 sums over every position (a subset of positions cost the first pass's
    whitening accuracy on large maps for a few milliseconds), the small C x C algebra float64. The
    transform itself runs in the content's precision (bf16 in AdaIN's refine pass), WCT(x) = x A^T +
    (mu(y) - mu(x) A^T) as one product with a bias (A: the two matrices above), so the centred content is
    never materialised. The result keeps the content's memory format (channels_last features stay so,
    for the decoder)."""
    n, c, h, w = content.shape

    def moments(f: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # mean, eigenvalues, eigenvectors, kept
        rows = f.permute(0, 2, 3, 1).reshape(f.shape[0], -1, c).float()  # (N, H*W, C); a view if fp32 channels_last
        count, mean = rows.shape[1], rows.mean(1, keepdim=True).double()
        second = (rows.transpose(1, 2) @ rows).double()  # uncentred: no centred copy of the rows
        covariance = (second - count * mean.transpose(1, 2) @ mean) / max(count - 1, 1)
        values, vectors = torch.linalg.eigh(covariance)
        return mean, values, vectors, values > (values.amax(-1, keepdim=True) * relative_floor).clamp_min(eps)

    x_mean, d_x, e_x, keep_x = moments(content)
    y_mean, d_y, e_y, keep_y = moments(style)
    whiten = e_x @ torch.diag_embed(torch.where(keep_x, d_x.clamp_min(eps).rsqrt(), 0)) @ e_x.transpose(1, 2)
    colour = e_y @ torch.diag_embed(torch.where(keep_y, d_y.clamp_min(0).sqrt(), 0)) @ e_y.transpose(1, 2)
    matrix = (colour @ whiten).transpose(1, 2)  # applied on the right of position rows
    bias = y_mean - x_mean @ matrix
    x = content.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of channels_last features
    out = torch.baddbmm(bias.to(content.dtype), x, matrix.to(content.dtype))
    return out.view(n, h, w, c).permute(0, 3, 1, 2)


FEATURE_TRANSFORMS = {"adain": adain, "wct": whiten_colour}


def check_feature_transform(name: str) -> None:
    """A one-line error for a feature transform that :data:`FEATURE_TRANSFORMS` lacks."""
    if name not in FEATURE_TRANSFORMS:
        raise PixelforgeError(f"unknown feature transform {name!r}; choose one of {', '.join(FEATURE_TRANSFORMS)}")


@dataclass
class AdaINConfig:
    """Encoder = a frozen backbone up to ``layer``; decoder = its rough mirror, trained."""

    # offline or vgg19 / vgg16 (then the encoder's weights are in the run)
    backbone: str = flag("offline", choices=("offline", "vgg19", "vgg16"),
                         help="encoder: offline (built in) or VGG (needs --weights or a download)")
    # the encoder layer AdaIN acts on ("" = r3 offline, relu4_1 VGG); deeper = larger-scale style, coarser content
    layer: str = flag("", help="the encoder layer AdaIN acts on (offline: r1..r5; VGG: relu1_1..relu5_1)",
                      default_text="r3 offline, relu4_1 VGG")
    # decoder channels after each x2 upsampling, deepest first
    widths: tuple[int, ...] = flag((64, 32), help="decoder channels per upsampling, deepest first")
    # >1: the last log2(shuffle) upsamplings are a pixel shuffle, so no decoder layer runs at full resolution
    shuffle: int = flag(1, help="decoder pixel-shuffle factor; 1 = every upsampling nearest x2 + convolutions",
                        choices=(1, 2, 4))
    # the decoder's x2 upsamplings: nearest (each feature position a 2x2 block, the paper's) or bilinear
    # (chosen on both validation folds: benchmarks/style_transfer.py --tune-learned --paired-with)
    upsample: str = flag("bilinear", choices=UPSAMPLINGS, help="the decoder's x2 upsampling: nearest or bilinear")
    # the output's colours matched to the style image's (AdaIN on the pixels; colour_match says how)
    match_colours: bool = flag(True, help="give the output the style's colours (see --colour-match)")
    # how: each RGB channel's mean and spread set to the style's (rgb); in YCbCr the chroma's mean and spread
    # and the luma's mean, keeping the picture's contrast (chroma, match_chroma); or the chroma's whole
    # histogram and the luma's mean (histogram, match_chroma_histogram; chosen on validation over two folds:
    # benchmarks/style_transfer.py --adain-colour-matches)
    colour_match: str = flag("histogram", choices=COLOUR_MATCHES,
                             help="rgb: each RGB channel's mean and spread; chroma: the chroma's mean and spread "
                                  "and the luma's mean (the picture keeps its contrast); histogram: the chroma's "
                                  "whole histogram and the luma's mean")
    # chroma and histogram: how far the luma moves from the picture's own (0) to the style's (1): its spread
    # (chroma, geometrically) or its histogram (histogram, linearly). Chosen on validation with the matching
    # and the FiLM decoder over three folds (benchmarks/style_transfer.py --adain-colour-matches histogram:T).
    luma_spread: float = flag(0.5, help="with --colour-match chroma or histogram: how far the luma moves from the "
                                         "picture's (0) to the style's spread or histogram (1)")
    # what gives the content features the style's statistics at inference: per-channel mean and spread
    # (AdaIN), or mean and whole channel covariance (whitening and colouring, Li et al. 2017). Training
    # always uses AdaIN: the decoder learns to turn features of any statistics back into an image.
    transform: str = flag("wct", choices=tuple(FEATURE_TRANSFORMS),
                          help="feature transform: adain (mean and spread) or wct (mean and covariance)")
    # wct: the covariance directions left out besides the nearly empty ones, as a fraction of the largest
    # eigenvalue (whiten_colour's relative_floor; chosen with the FiLM decoder over three validation folds:
    # benchmarks/style_transfer.py --wct-floors)
    wct_floor: float = flag(3e-3, help="wct: leave out the directions whose eigenvalue is under this fraction of "
                                      "the largest")
    # A second, finer pass (the multi-level stylisation of Li et al. 2017): the decoded image is encoded again
    # at this shallower style layer, the transform gives its features the style's statistics there, and a
    # small decoder trained only to reconstruct that layer turns them back into pixels. "" = one pass (chosen
    # over both validation folds once the colours are matched on the chroma: benchmarks/style_transfer.py);
    # "auto": r2 on the offline encoder's r3, else one pass.
    refine: str = flag("", help="a shallower style layer (e.g. r2) for a second transform pass with its own "
                                "reconstruction decoder; empty = one pass (the default); auto = r2 with the offline r3")
    # How strongly the refine pass restyles, as alpha does for the whole: its features blended by alpha times
    # this (0 = the first pass's image as the refine decoder rebuilds it, 1 = the full second transform;
    # chosen on validation: benchmarks/style_transfer.py --tune-learned --adain-refine-alphas).
    refine_alpha: float = flag(0.5, help="the refine pass's strength, 0..1 (times --alpha)")
    # The content is stylised with a mirrored margin this wide on every side, cut off afterwards: the encoder's
    # zero padding marks the image's edges as strong features, which the transform amplifies and the decoder
    # draws as a frame. Only how the model is run, not its weights, so runs from before it get it too (what it
    # does to the validation measures: docs/style_transfer.md).
    border: int = flag(16, help="px of mirrored margin around the content while stylising (no frame at the edges)",
                       check="non-negative")
    # The longest side (px) the style image is read at for its statistics (chosen on validation over two folds
    # of four styles: benchmarks/style_transfer.py --tune-learned --paired-with). Only how the model is run,
    # like the margin.
    style_side: int = flag(128, help="px: at inference, the longest side the style image is read at for its "
                                     "statistics")
    # The content is stylised at this fraction of its size and the result enlarged back: the style's strokes
    # and shapes come out larger against the picture, which keeps less of its detail (measured on both
    # validation folds: docs/style_transfer.md). Only how the model is run, like the margin.
    content_scale: float = flag(1.0, help="stylise the content at this fraction of its size (0.25 to 1) and enlarge "
                                          "the result back: larger strokes, less detail")
    # Tells the decoder's finer stages the style's finer statistics: after each x2 upsampling, its feature map
    # h becomes h (1 + alpha gamma) + alpha beta, with gamma and beta linear in the style's per-channel means
    # and spreads at every style layer (FiLM, Perez et al. 2018; Ghiasi et al. 2017's networks condition
    # every layer on the style). Without it the decoder knows the style only through the AdaIN layer's
    # statistics. Zero-initialised, so that a decoder taken from a run without it starts unchanged. Chosen
    # over three validation folds (benchmarks/style_transfer.py --tune-learned --paired-with).
    style_film: bool = flag(True, help="condition the decoder's upsampled stages on the style's statistics at every "
                                       "style layer (FiLM)")
    # runs and cards from before these options (pixelforge.registry.stored_config)
    ABSENT_IN_OLDER = {"match_colours": False, "transform": "adain", "wct_floor": 0.0, "refine": "",
                       "refine_alpha": 1.0, "style_side": 128, "colour_match": "rgb", "luma_spread": 0.0,
                       "content_scale": 1.0, "upsample": "nearest", "style_film": False}

    def __post_init__(self):
        if self.shuffle not in (1, 2, 4):
            raise PixelforgeError(f"AdaIN decoder shuffle must be 1, 2 or 4, not {self.shuffle}")
        if self.backbone not in BACKBONES:
            raise PixelforgeError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        check_feature_transform(self.transform)
        if not 0 <= self.luma_spread <= 1:
            raise PixelforgeError(f"AdaIN luma_spread must be between 0 and 1, not {self.luma_spread}")
        if self.colour_match not in COLOUR_MATCHES:
            raise PixelforgeError(f"AdaIN colour_match must be one of {', '.join(COLOUR_MATCHES)}, "
                                  f"not {self.colour_match!r}")
        if not 0 <= self.wct_floor < 1:
            raise PixelforgeError(f"AdaIN wct_floor is a fraction of the largest eigenvalue (0 <= f < 1), "
                                  f"not {self.wct_floor}")
        self.layer = self.layer or ("r3" if self.backbone == "offline" else "relu4_1")
        if self.refine == "auto":
            self.refine = "r2" if (self.backbone, self.layer) == ("offline", "r3") else ""
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) < 1:
            raise PixelforgeError(f"AdaIN decoder widths must be positive numbers, not {self.widths}")
        if self.border < 0:
            raise PixelforgeError(f"AdaIN border is a margin in pixels (0 or more), not {self.border}")
        if not 0 <= self.refine_alpha <= 1:
            raise PixelforgeError(f"AdaIN refine_alpha must be between 0 and 1, not {self.refine_alpha}")
        check_content_scale(self.content_scale)
        if self.upsample not in UPSAMPLINGS:
            raise PixelforgeError(f"AdaIN upsample must be one of {', '.join(UPSAMPLINGS)}, not {self.upsample!r}")
        if self.style_side < MIN_STYLE_SIDE:
            raise PixelforgeError(f"AdaIN style_side must be at least {MIN_STYLE_SIDE} px, not {self.style_side}")
        if self.refine and self.refine not in self.style_layers[:-1]:
            raise PixelforgeError(f"AdaIN refine layer {self.refine!r} must be a style layer before {self.layer}: "
                                  + (", ".join(self.style_layers[:-1]) or "there is none"))

    @property
    def style_layers(self) -> tuple[str, ...]:
        """Every style layer up to and including the AdaIN layer (relu1_1 .. relu4_1 for VGG, as in the paper)."""
        names = OFFLINE_STYLE_LAYERS if self.backbone == "offline" else VGG_STYLE_LAYERS
        if self.layer in names:
            return names[:names.index(self.layer) + 1]
        return (*[n for n in names if _depth(self.backbone, n) < _depth(self.backbone, self.layer)], self.layer)


def _depth(backbone: str, layer: str) -> int:
    if backbone == "offline":
        return OFFLINE_STYLE_LAYERS.index(layer)
    return dict(vgg_layer_names(backbone))[layer]


def _downsamplings(backbone: str, layer: str) -> int:
    if backbone == "offline":
        return OFFLINE_STYLE_LAYERS.index(layer)
    names = [n for n, _ in vgg_layer_names(backbone)]
    return sum(1 for n in names[:names.index(layer)] if n.startswith("pool"))


def _zero_linear(features_in: int, features_out: int) -> nn.Linear:
    """A linear layer with zero weights and bias, made without drawing random numbers (so that the random
    stream after building a model is the same with it as without it)."""
    linear = nn.Linear(features_in, features_out, device="meta").to_empty(device="cpu")
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


# FiLM's output scale: under Adam a zero-initialised linear layer's output moves by about its learning rate
# times the code's L1 norm per step (hundreds of entries), so without it the modulation outruns the decoder
FILM_STEP = 0.1


class AdaINNet(nn.Module):
    """Arbitrary style transfer: encode content and style, AdaIN, decode (Huang & Belongie 2017).

    ``forward(content, style, alpha)``: t = alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c), output g(t)
    in [0, 1]. The decoder mirrors the encoder's downsamplings with x2 upsampling (bilinear, or nearest as in
    the paper: ``upsample``) + 3x3 reflection-padded convolutions (no normalisation: it would wash out the statistics AdaIN sets).
    With ``shuffle`` r > 1 the last log2(r) levels stay at 1/r resolution (one 3x3 convolution each)
    and the last convolution predicts r x r pixels per position, unfolded by a pixel shuffle: the
    full-resolution convolutions, most of the decoder's time, are gone. ``match_colours``: the
    decoded image gets the style image's colours (AdaIN on the pixels, blended by alpha like the features):
    ``colour_match`` histogram gives its chroma the style's histogram and its luma the style's mean
    (:func:`~pixelforge.colour.match_chroma_histogram`), chroma the chroma's mean and spread only
    (:func:`~pixelforge.colour.match_chroma`), rgb each
    RGB channel's mean and spread. With ``refine`` (a shallower layer l) a second pass
    follows, as in Li et al.'s multi-level stylisation: t' = alpha T(f_l(g(t)), f_l(s)) + (1 - alpha) f_l(g(t)),
    output r(t'), where the small decoder r is trained only to reconstruct, r(f_l(x)) ~ x, so it carries
    no training style and adds the style's finer statistics whatever the style. With ``style_film`` the
    decoder's upsampled stages are modulated by the style's statistics at every style layer
    (:meth:`style_code`), not only the AdaIN layer's.
    """

    family_kind = "adain"
    # The pipelines' default: bf16 autocast where the device runs it fast. The content's features and the
    # feature transform stay an fp32 island (see target_features); the decoder runs in bf16, as in training.
    default_precision = "auto"

    def __init__(self, cfg: AdaINConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "offline":
            self.encoder = RandomFeatures(seed=0)
            self.encoder.channels_last = True
        else:  # weights come from training (load_vgg) or from the run's safetensors
            self.encoder = VGGFeatures(cfg.backbone, layers=cfg.style_layers)
        self.encoder.check_layers([cfg.layer])
        self.style_layers = cfg.style_layers
        channels = self.encoder(torch.zeros(1, 3, 32, 32), [cfg.layer])[cfg.layer].shape[1]
        ups = _downsamplings(cfg.backbone, cfg.layer)
        self.min_size = 2 ** (ups + 2)  # at least 4x4 feature positions for meaningful statistics
        folded = int(math.log2(cfg.shuffle))
        if folded > ups:
            raise PixelforgeError(f"AdaIN decoder shuffle {cfg.shuffle} is more than the encoder's downsampling "
                                  f"at {cfg.layer} ({2 ** ups})")
        widths = list(cfg.widths) + [cfg.widths[-1]] * max(0, ups - len(cfg.widths))
        layers: list[nn.Module] = []
        modulated: dict[str, int] = {}  # decoder index after which FiLM acts -> its channels
        cin = channels
        for i in range(ups):
            if i < ups - folded:
                layers += [*_conv(cin, widths[i], 3), nn.ReLU(inplace=True),
                           nn.Upsample(scale_factor=2, mode=cfg.upsample), *_conv(widths[i], widths[i], 3)]
                modulated[str(len(layers) - 1)] = widths[i]
            else:
                layers += _conv(cin, widths[i], 3)
            layers.append(nn.ReLU(inplace=True))
            cin = widths[i]
        layers += _conv(cin, 3 * cfg.shuffle ** 2, 3)
        if cfg.shuffle > 1:
            layers.append(nn.PixelShuffle(cfg.shuffle))
        self.decoder = nn.Sequential(*layers)
        self.film = None
        if cfg.style_film and modulated:  # with every upsampling a pixel shuffle there is no stage to modulate
            code = 2 * sum(f.shape[1] for f in self.encoder(torch.zeros(1, 3, 32, 32), self.style_layers).values())
            self.film = nn.ModuleDict({index: _zero_linear(code, 2 * width) for index, width in modulated.items()})
        self.pad_to = 2 ** ups
        self.refiner = None
        if cfg.refine:
            refine_channels = self.encoder(torch.zeros(1, 3, 32, 32), [cfg.refine])[cfg.refine].shape[1]
            self.refiner = reconstruction_decoder(refine_channels, _downsamplings(cfg.backbone, cfg.refine))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen, always
        return self

    def encode(self, images: Tensor, layers=None) -> dict[str, Tensor]:
        return self.encoder(images, layers or self.style_layers)

    def decode(self, features: Tensor, style_code: Tensor | None = None, alpha: float | Tensor = 1.0) -> Tensor:
        """Pixels in [0, 1] (fp32, for the colour matching) from the transformed features; with ``style_film``
        the style's :meth:`style_code` modulates the upsampled stages, by ``alpha``."""
        if self.film is None:
            return torch.sigmoid(self.decoder(features).float())
        if style_code is None:
            raise PixelforgeError("this AdaIN decoder is conditioned on the style (style_film): give its style code")
        h = features
        for index, layer in enumerate(self.decoder):
            h = layer(h)
            if str(index) in self.film:
                film = self.film[str(index)](style_code.to(h.dtype)) * (alpha * FILM_STEP)
                gamma, beta = film.unflatten(1, (2, -1))[..., None, None].unbind(1)
                h = torch.addcmul(beta, h, 1 + gamma)
        return torch.sigmoid(h.float())

    def style_code(self, style_features: dict[str, Tensor],
                   stats: dict[str, tuple[Tensor, Tensor]] | None = None) -> Tensor | None:
        """(N, 2 sum C_l): the style's per-channel means and spreads at every style layer (``stats``, when the
        caller has them, else computed from ``style_features``), standardised over the code (zero mean, unit
        spread), what ``style_film`` conditions the decoder on; None for a decoder without it."""
        if self.film is None:
            return None
        stats = [stats[name] if stats is not None else channel_stats(style_features[name])
                 for name in self.style_layers]
        code = torch.cat([t.flatten(1) for pair in stats for t in pair], dim=1)
        mean, var = code.mean(1, keepdim=True), code.var(1, unbiased=False, keepdim=True)
        # layer_norm without weights, spelled out: its ONNX export needs a static shape
        return (code - mean) * torch.rsqrt(var + 1e-5)

    def forward(self, content: Tensor, style: Tensor, alpha: float | Tensor = 1.0) -> Tensor:
        return at_scale(lambda images: self._with_margin(images, style, alpha), content, self.cfg.content_scale)

    def _with_margin(self, content: Tensor, style: Tensor, alpha: float | Tensor) -> Tensor:
        h, w = content.shape[-2:]
        padded, margin = pad_with_border(content, self.cfg.border, self.pad_to)
        return self.transfer(padded, style, alpha)[..., margin:margin + h, margin:margin + w]

    def transfer(self, content: Tensor, style: Tensor, alpha: float | Tensor = 1.0) -> Tensor:
        """The stylised image of a content image whose sides are multiples of ``self.pad_to``, as it is: no
        margin added (``forward`` adds it around this; the ONNX export is this)."""
        layer, refine = self.cfg.layer, self.cfg.refine
        wanted = self.style_layers if self.film is not None else [layer]
        f_s = self.encoder(style, [*wanted, refine] if self.refiner is not None else wanted)
        out = self.decode(self._transformed(content, f_s[layer].float(), alpha, layer), self.style_code(f_s), alpha)
        if self.refiner is not None:
            out = self.reconstruct(self._transformed(out, f_s[refine].float(), alpha * self.cfg.refine_alpha, refine,
                                                     fp32_island=False))
        if self.cfg.match_colours:
            # The encoder's zero-mean filters carry little of the style's palette into t, so the decoder
            # cannot know it: AdaIN once more, on the pixels (colour_match says how; interpolated by alpha).
            matched = (adain(out, style) if self.cfg.colour_match == "rgb" else
                       COLOUR_MATCHERS[self.cfg.colour_match](out, style, luma_spread=self.cfg.luma_spread))
            out = (alpha * matched + (1 - alpha) * out).clamp(0, 1)
        return out

    def reconstruct(self, features: Tensor) -> Tensor:
        """The refine layer's features -> pixels in [0, 1] (fp32), by the decoder trained to reconstruct."""
        return torch.sigmoid(self.refiner(features).float())

    def target_features(self, content: Tensor, style: Tensor, alpha: float | Tensor = 1.0) -> Tensor:
        """t = alpha AdaIN(f(c), f(s)) + (1 - alpha) f(c): what the decoder turns into the image. Under
        autocast the content's features and the transform stay fp32: whitening (``wct``) scales the
        features' low-variance directions up, and bf16 rounding with them (the decoder trains under autocast
        on features encoded in fp32, as here). The style's features only give their mean and covariance,
        averaged over every position and never inverted, so they are encoded under autocast."""
        layer = self.cfg.layer
        return self._transformed(content, self.encoder(style, [layer])[layer].float(), alpha, layer)

    def _transformed(self, content: Tensor, f_s: Tensor, alpha: float | Tensor, layer: str,
                     fp32_island: bool = True) -> Tensor:
        """The content's features at ``layer`` given the style features ``f_s``' statistics (see target_features).
        Under autocast the transform runs outside it (its covariances must stay fp32), and the content is
        encoded in fp32 too unless ``fp32_island=False``: the refine pass encodes under autocast, its
        full-resolution encoding being most of its cost, and its output stays within 46 dB PSNR of the fp32
        encoding's on the validation pairs (the main pass's, in bf16, falls to 28 dB on some)."""
        options = {"relative_floor": self.cfg.wct_floor} if self.cfg.transform == "wct" else {}

        def blend(f_c: Tensor) -> Tensor:
            return alpha * FEATURE_TRANSFORMS[self.cfg.transform](f_c, f_s, **options) + (1 - alpha) * f_c

        device = content.device.type
        if not torch.is_autocast_enabled(device):
            return blend(self.encoder(content, [layer])[layer])
        if fp32_island:
            with torch.autocast(device, enabled=False):
                f_c = self.encoder(content.float(), [layer])[layer]
        else:
            f_c = self.encoder(content, [layer])[layer]
        with torch.autocast(device, enabled=False):
            return blend(f_c)


def pad_with_border(images: Tensor, border: int, multiple: int = 1) -> tuple[Tensor, int]:
    """``images`` with a mirrored margin of ``border`` px on every side (less where an image is too small to
    mirror that much), then repeated edge pixels at the right and bottom up to sides that are multiples of
    ``multiple``. Returns the padded images and the margin m: the original is ``[..., m:m + h, m:m + w]``."""
    margin = max(0, min(border, images.shape[-2] - 1, images.shape[-1] - 1))
    if margin:
        images = F.pad(images, (margin, margin, margin, margin), mode="reflect")
    ph, pw = -images.shape[-2] % multiple, -images.shape[-1] % multiple
    if ph or pw:
        images = F.pad(images, (0, pw, 0, ph), mode="replicate")
    return images, margin


def reconstruction_decoder(channels: int, downsamplings: int, width: int = 48) -> nn.Sequential:
    """A small decoder from an encoder layer back to pixels (AdaIN's ``refine`` pass): a 3x3 convolution and
    ReLU at the layer's resolution, then one that predicts r x r pixels per position (r = 2^downsamplings),
    unfolded by a pixel shuffle, so that nothing runs at full resolution but the shuffle."""
    r = 2 ** downsamplings
    layers = [*_conv(channels, width, 3), nn.ReLU(inplace=True), *_conv(width, 3 * r * r, 3)]
    return nn.Sequential(*layers, nn.PixelShuffle(r)) if r > 1 else nn.Sequential(*layers)


@register_model("adain", family="style", config=AdaINConfig,
                description="arbitrary style transfer: encoder, adaptive instance norm, decoder (Huang & Belongie 2017)")
def build_adain(cfg: AdaINConfig) -> AdaINNet:
    return AdaINNet(cfg)
