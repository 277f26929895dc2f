"""Training tasks for the two learned style-transfer models, run by the generic loop.

Both take random ``crop`` x ``crop`` windows of content photos (the loop hands out overlapping
patches of the photos; see :func:`pixelforge.data.transforms.patches` and
:func:`~pixelforge.data.transforms.random_crops`) and judge the output with the perceptual losses of
:mod:`pixelforge.models.style` on a frozen backbone.

**Feed-forward stylizer** (Johnson, Alahi & Fei-Fei 2016, "Perceptual losses for real-time style
transfer"): one network T per style s, trained over content photos c to minimise

    L(c) = alpha L_c(T(c), c) + beta L_s(T(c), s) + gamma TV(T(c)) + delta L_col(T(c), s)

with the relative content and Gram style losses of the Gatys pipeline (each term divided by its
target's energy): L_c = mean (F_L(T(c)) - F_L(c))^2 / mean F_L(c)^2 at the content layer L
(``content_layer``), and L_s = (1/|S|) sum_l mean (G_l(T(c)) - G_l(s))^2 / mean G_l(s)^2; L_col is
the sliced Wasserstein distance of the RGB histograms (:func:`~pixelforge.models.style.colour_loss`),
the colour that the backbone's zero-mean filters barely see. The optimisation that Gatys runs per image is paid once,
at training time.

**AdaIN** (Huang & Belongie 2017, "Arbitrary style transfer in real-time with adaptive instance
normalization"): encoder f (the frozen backbone up to one layer), t = AdaIN(f(c), f(s)) for a
random style s from a set, decoder g trained to minimise

    L = L_c + lambda L_s + delta L_col(g(t), s),   L_c = mean (f(g(t)) - t)^2,
    L_s = sum_{l in S} mean (mu(phi_l(g(t))) - mu(phi_l(s)))^2 + mean (sigma(phi_l(g(t))) - sigma(phi_l(s)))^2

(mu, sigma: per-channel mean and standard deviation over positions; S the backbone's style layers up
to the AdaIN layer). Matching only means and standard deviations is what lets one decoder serve any
style image. ``correlation_weight`` rho adds rho sum_{l in S} mean (R(phi_l(g(t))) - R(phi_l(s)))^2, R the
channels' correlation matrix (:func:`~pixelforge.models.style.channel_correlations`): which channels fire
together, the structure a Gram matrix holds beyond the means and spreads.
With the model's ``refine`` layer l, a second decoder r learns only to reconstruct the content crops
from that layer, L_r = mean (r(f_l(c)) - c)^2 + 0.1 mean (f_l(r(f_l(c))) - f_l(c))^2, in the same
steps (Li et al. 2017's decoders: they never see a style). ``decoder_from`` starts the decoder from
another AdaIN run's or shipped model's weights (same encoder layer and decoder shape), so a refine
pass can be added to a trained decoder.
``style_jitter`` gives each style crop a random palette and scale (:func:`jitter_styles`), so that a
few style images show the decoder more styles' statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..colour import rgb_to_ycbcr, ycbcr_to_rgb
from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..models.style import (
    FEATURE_TRANSFORMS, AdaINNet, TransformerNet, build_backbone, channel_correlations, channel_stats, check_feature_transform,
    colour_loss, content_loss, gram_matrix, style_loss, total_variation,
)
from ..runs import Run
from ..runtime import Runtime, make_optimizer
from .task import SingleNetTask
from ..data.transforms import random_crops
from .lr_schedules import cosine_lr


def _check_common(crop: int, style_size: int, lr: float, weights: dict[str, float]) -> None:
    if crop < 32:
        raise PixelforgeError(f"crop must be at least 32 px, not {crop}")
    if style_size < 32:
        raise PixelforgeError(f"style size must be at least 32 px, not {style_size}")
    if not 0 < lr < 1:
        raise PixelforgeError(f"lr must be in (0, 1), not {lr}")
    for name, value in weights.items():
        if not (math.isfinite(value) and value >= 0):
            raise PixelforgeError(f"{name} must be a non-negative number, not {value}")


@dataclass
class StylizerTrainConfig:
    style: str = ""  # the style image, as given (the run keeps a copy: style.png)
    # the style image's longest side when its Gram matrices are taken
    style_size: int = flag(256, help="style image size in pixels", check="positive")
    crop: int = flag(160, help="content crop size per step", check="positive")  # content crops per step
    content_weight: float = flag(5.0, help="content loss weight", check="non-negative")
    # None: the backbone's own content layer (r3 offline, relu4_2 for VGG)
    content_layer: str | None = flag(None, help="backbone layer the content loss compares (default: the backbone's)")
    style_weight: float = flag(20.0, help="style loss weight", check="non-negative")
    # high: the offline backbone's finest filters reward pixel-scale stripes
    tv_weight: float = flag(30.0, help="total-variation weight", check="non-negative")
    colour_weight: float = flag(10.0, help="weight of the colour-histogram loss against the style image",
                                check="non-negative")
    backbone: str = flag(
        "offline", help="loss network: offline (built in), vgg19 or vgg16", choices=("offline", "vgg19", "vgg16"))
    # VGG weights file for backbone vgg19/vgg16
    weights: str | None = flag(None, help="VGG weights file for --backbone vgg19/vgg16")
    lr: float = flag(2e-3, help="Adam's peak learning rate", check="positive")
    warmup: float = 0.02
    min_lr_factor: float = 0.05
    ABSENT_IN_OLDER = {"colour_weight": 0.0}  # runs from before the colour term resume without it

    def __post_init__(self):
        _check_common(self.crop, self.style_size, self.lr, {"content weight": self.content_weight,
                                                            "style weight": self.style_weight,
                                                            "tv weight": self.tv_weight,
                                                            "colour weight": self.colour_weight})


@dataclass
class AdaINTrainConfig:
    styles: str = ""  # style images: folder:PATH or files separated by commas (the run keeps copies)
    # style images are loaded at this size (shorter side, centre crop)
    style_size: int = flag(256, help="style image size in pixels", check="positive")
    crop: int = flag(160, help="content crop size per step", check="positive")
    style_weight: float = flag(2.0, help="style loss weight lambda", check="non-negative")  # lambda
    colour_weight: float = flag(0.0, help="weight of the colour-histogram loss against each style crop",
                                check="non-negative")
    # the style's cross-channel structure at every style layer, beyond each channel's mean and spread
    correlation_weight: float = flag(0.0, help="weight of the loss on each style layer's channel correlations "
                                               "(0 = means and spreads only, as in the paper)", check="non-negative")
    lr: float = flag(1e-3, help="Adam's peak learning rate", check="positive")
    # the feature transform the decoder trains on (the model's --transform is the one used at inference)
    train_transform: str = flag("adain", choices=tuple(FEATURE_TRANSFORMS),
                                help="feature transform while training: adain (as in the paper) or wct")
    # more styles from few: each style crop gets a random palette and scale (see jitter_styles; 0 = as they are)
    style_jitter: float = flag(0.0, help="strength (0-1) of the random palette and scale changes of the style "
                                        "crops; 0 = the style images as they are", check="non-negative")
    # start the decoder from another AdaIN run or zoo:NAME (a new refine decoder starts fresh)
    decoder_from: str = flag("", help="start the decoder from this AdaIN run or zoo:NAME's weights")
    warmup: float = 0.02
    min_lr_factor: float = 0.05

    def __post_init__(self):
        check_feature_transform(self.train_transform)
        if self.style_jitter > 1:
            raise PixelforgeError(f"style jitter is a strength between 0 and 1, not {self.style_jitter}")
        _check_common(self.crop, self.style_size, self.lr, {"style weight": self.style_weight,
                                                            "colour weight": self.colour_weight,
                                                            "correlation weight": self.correlation_weight})


def jitter_styles(images: Tensor, strength: float) -> Tensor:
    """Style images (N, 3, H, W) in [0, 1] with new palettes, per image: the chroma (Cb, Cr) rotated by a
    random angle of up to strength x 180 degrees and scaled by a saturation factor in exp(+-strength / 2),
    the luma's contrast scaled by exp(+-strength / 4) about its mean. A few paintings then show the decoder
    many colour statistics, as a large style set would."""
    n = images.shape[0]
    y, cb, cr = rgb_to_ycbcr(images.float()).unbind(1)

    def uniform() -> Tensor:  # in [-1, 1), one per image, shaped to broadcast over (N, H, W)
        return torch.rand(n, 1, 1, device=images.device) * 2 - 1

    angle = uniform() * math.pi * strength
    saturation = torch.exp(uniform() * 0.5 * strength)
    cos, sin = angle.cos() * saturation, angle.sin() * saturation
    cb, cr = cb - 0.5, cr - 0.5
    mean = y.mean((1, 2), keepdim=True)
    y = (y - mean) * torch.exp(uniform() * 0.25 * strength) + mean
    return ycbcr_to_rgb(torch.stack([y, 0.5 + cos * cb - sin * cr, 0.5 + sin * cb + cos * cr], 1)).clamp(0, 1)


class StylizerTask(SingleNetTask):
    """One feed-forward network for one style image (see the module docstring)."""

    name = "style"
    loss_keys = ("loss", "content", "style")
    accumulates = False

    def __init__(self, model: TransformerNet, cfg: StylizerTrainConfig, runtime: Runtime, style: Tensor):
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.net = runtime.module(model)
        self.net_train = runtime.wrap(self.net)
        self.opt = make_optimizer(torch.optim.Adam, self.net.parameters(), lr=cfg.lr)
        self.backbone = build_backbone(cfg.backbone, cfg.weights).to(runtime.device)
        self.style_layers = tuple(self.backbone.style_layers)
        self.content_layer = cfg.content_layer or self.backbone.content_layer
        self.backbone.check_layers([self.content_layer])
        with torch.no_grad():
            feats = self.backbone(style[None].to(runtime.device), self.style_layers)
            self.grams = {n: gram_matrix(feats[n]) for n in self.style_layers}
        self.layer_weights = {n: 1.0 / (len(self.style_layers) * g.pow(2).mean().clamp_min(1e-12).item())
                              for n, g in self.grams.items()}
        self.style_image = style
        self.progress = 0.0
        self.last_batch: tuple[Tensor, Tensor] | None = None

    def losses(self, content: Tensor, output: Tensor) -> dict[str, Tensor]:
        layers = tuple(dict.fromkeys([*self.style_layers, self.content_layer]))
        feats = self.backbone(output.float(), layers)
        with torch.no_grad():
            target = self.backbone(content, [self.content_layer])[self.content_layer]
        out = {"content": content_loss(feats[self.content_layer], target) / target.pow(2).mean().clamp_min(1e-12),
               "style": style_loss(feats, self.grams, self.layer_weights),
               "tv": total_variation(output.float()),
               "colour": colour_loss(output, self.style_image[None].to(output.device))}
        out["loss"] = (self.cfg.content_weight * out["content"] + self.cfg.style_weight * out["style"]
                       + self.cfg.tv_weight * out["tv"] + self.cfg.colour_weight * out["colour"])
        return out

    def step(self, images: Tensor, labels: Tensor | None) -> dict[str, float]:
        lr = self.cfg.lr * cosine_lr(self.progress, self.cfg.warmup, self.cfg.min_lr_factor)
        for g in self.opt.param_groups:
            g["lr"] = lr
        content = self.rt.tensor(random_crops(images, self.cfg.crop))
        self.net_train.train()
        self.opt.zero_grad(set_to_none=True)
        with self.rt.autocast():
            output = self.net_train(content)
        values = self.losses(content, output)
        values["loss"].backward()
        self.opt.step()
        self.last_batch = (content[:4].detach().cpu(), output[:4].detach().float().cpu())
        return {**{k: float(v.detach()) for k, v in values.items()}, "lr": lr}

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        pass

    def on_train_end(self, run: Run, step: int) -> None:
        """samples/final.png: the last training crops (top) and their stylisations (bottom)."""
        if self.last_batch is not None:
            content, output = self.last_batch
            save_grid(torch.cat([content, output.clamp(0, 1)]), run.path / "samples" / "final.png", nrow=len(content))


class AdaINTask(SingleNetTask):
    """The AdaIN decoder over content photos x a set of style images (see the module docstring)."""

    name = "style"
    loss_keys = ("loss", "content", "style")
    accumulates = False

    def __init__(self, model: AdaINNet, cfg: AdaINTrainConfig, runtime: Runtime, styles: Tensor):
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.net = runtime.module(model)
        self.net_train = self.net
        trained = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
        self.opt = make_optimizer(torch.optim.Adam, trained, lr=cfg.lr)
        if styles.dtype != torch.uint8 or styles.dim() != 4:
            raise PixelforgeError("AdaIN styles must be a uint8 (N, 3, H, W) tensor")
        self.styles = styles.float().div(127.5).sub(1)  # the loop's scale, for random_crops
        self.progress = 0.0
        self.last_batch: tuple[Tensor, Tensor, Tensor] | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {self.name: self.net}

    def step(self, images: Tensor, labels: Tensor | None) -> dict[str, float]:
        lr = self.cfg.lr * cosine_lr(self.progress, self.cfg.warmup, self.cfg.min_lr_factor)
        for g in self.opt.param_groups:
            g["lr"] = lr
        n = images.shape[0]
        content = self.rt.tensor(random_crops(images, self.cfg.crop))
        pick = torch.randint(0, len(self.styles), (n,))
        style = self.rt.tensor(self.style_crops(pick))
        net = self.net
        net.train()
        layer, layers = net.cfg.layer, net.style_layers
        with torch.no_grad():  # the content's features at the refine layer too, from the same pass
            f_content = net.encode(content, [layer, net.cfg.refine] if net.refiner is not None else [layer])
            f_c = f_content[layer]
            f_s = net.encode(style, layers)
            s_stats = {name: channel_stats(f_s[name]) for name in layers}
            t = FEATURE_TRANSFORMS[self.cfg.train_transform](f_c, f_s[layer])
        self.opt.zero_grad(set_to_none=True)
        with self.rt.autocast():
            output = net.decode(t, net.style_code(f_s, s_stats))
        f_g = net.encode(output.float(), layers)
        content_term = F.mse_loss(f_g[layer].float(), t)
        style_term = 0.0
        for name in layers:
            g_mean, g_std = channel_stats(f_g[name])
            s_mean, s_std = s_stats[name]
            style_term = style_term + F.mse_loss(g_mean, s_mean) + F.mse_loss(g_std, s_std)
        colour_term = colour_loss(output, style)
        loss = content_term + self.cfg.style_weight * style_term + self.cfg.colour_weight * colour_term
        extra = {}
        if self.cfg.correlation_weight:
            extra["correlation"] = sum(F.mse_loss(channel_correlations(f_g[name]), channel_correlations(f_s[name]))
                                       for name in layers)
            loss = loss + self.cfg.correlation_weight * extra["correlation"]
        if net.refiner is not None:
            extra["reconstruction"] = self.reconstruction_term(net, content, f_content[net.cfg.refine])
            loss = loss + extra["reconstruction"]
        loss.backward()
        self.opt.step()
        self.last_batch = (content[:4].cpu(), style[:4].cpu(), output[:4].detach().float().cpu())
        return {"loss": loss.item(), "content": content_term.item(), "style": style_term.item(),
                "colour": colour_term.item(), **{k: v.item() for k, v in extra.items()}, "lr": lr}

    def style_crops(self, pick: Tensor) -> Tensor:
        """One crop of each picked style image in [0, 1]; with ``style_jitter`` a, a window of crop x
        2^u px (u uniform in +-0.75 a, within the image) resized to the crop, then :func:`jitter_styles`."""
        crop, strength = self.cfg.crop, self.cfg.style_jitter
        if not strength:
            return random_crops(self.styles[pick], crop)
        largest = min(self.styles.shape[-2:])
        window = int(min(largest, max(32, crop * 2 ** ((torch.rand(()).item() * 2 - 1) * 0.75 * strength))))
        crops = random_crops(self.styles[pick], window)
        if window != crop:
            crops = F.interpolate(crops, size=(crop, crop), mode="bilinear", antialias=True, align_corners=False)
        return jitter_styles(crops, strength)

    def reconstruction_term(self, net: AdaINNet, content: Tensor, f: Tensor) -> Tensor:
        """L_r of the module docstring: the refine decoder rebuilds the crops from their refine-layer features f."""
        layer = net.cfg.refine
        with self.rt.autocast():
            rebuilt = net.reconstruct(f)
        return F.mse_loss(rebuilt, content) + 0.1 * F.mse_loss(net.encode(rebuilt, [layer])[layer].float(), f.float())

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        pass

    def on_train_end(self, run: Run, step: int) -> None:
        """samples/final.png: rows of content crops, style crops and the decoder's outputs."""
        if self.last_batch is not None:
            content, style, output = self.last_batch
            save_grid(torch.cat([content, style, output.clamp(0, 1)]), run.path / "samples" / "final.png",
                      nrow=len(content))
