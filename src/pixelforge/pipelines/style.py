"""Neural style transfer and texture synthesis by optimisation (Gatys, Ecker & Bethge 2015/2016).

The image x itself is optimised (L-BFGS or Adam, pixels kept in [0, 1]) to minimise

    L(x) = alpha * L_c(x) + beta * L_s(x) + gamma * TV(x),

    L_c(x) = mean (F_L(x) - F_L(c))^2 / mean F_L(c)^2
    L_s(x) = (1 / |S|) sum_{l in S} mean (G_l(x) - G_l^*)^2 / mean (G_l^*)^2,   G_l^* = sum_k m_k G_l(s_k)

with F_l, G_l the features and Gram matrices of :mod:`pixelforge.models.style` and TV its total
variation. Each term is divided by the energy of its target, so the loss is a *relative* error and
the same weights work for every backbone and image size. Several styles s_k are mixed with
weights m_k (summing to 1) by mixing their Gram matrices; because the loss is quadratic in G this
equals sum_k m_k ||G(x) - G(s_k)||^2 up to a constant. Texture synthesis is alpha = 0 started
from noise.

``preserve_color`` is Gatys et al.'s (2016, "Preserving colour in neural artistic style transfer")
*luminance-only transfer*: content and style are reduced to their luminance Y (BT.601 YCbCr), the
style's Y is shifted and scaled to the content's mean and standard deviation, only Y is optimised,
and the result is recombined with the content's own Cb and Cr channels, so its colours are the
content's exactly. ``match_colors`` is the paper's other option turned around: the *content* takes the
style's full 3-D colour distribution (:func:`pixelforge.colour.transfer_colours`) before the
optimisation, and that recoloured photo is both the start and the content target, so the content term
no longer pulls the colours back to the photo's.

Coarse to fine (``scales``): the image is optimised at 1/4 and 1/2 of its size first (for three
scales), each result upsampled to start the next; the large structures of the style settle where a
step is cheap, and the full-size steps refine the detail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from .. import dryrun
from ..errors import PixelforgeError
from ..colour import luminance as _luminance, rgb_to_ycbcr, transfer_colours, ycbcr_to_rgb
from ..imageio import read_image, to_mode
from ..runtime import available_memory, resolve_device
from ..models.style import build_backbone, content_loss, gram_matrix, style_loss, total_variation

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
# The losses are relative errors, so the weights are ratios. Style weight, colour matching and scales were
# chosen on validation pairs against a peer package (`benchmarks/style_transfer.py --tune`, whose results
# file a test checks these against); content and tv weights by eye on 128 px photos (docs/style_transfer.md).
DEFAULT_CONTENT_WEIGHT = 10.0
DEFAULT_STYLE_WEIGHT = 100.0
DEFAULT_TV_WEIGHT = 10.0
DEFAULT_MATCH_COLORS = True
DEFAULT_SCALES = 3
TEXTURE_STYLE_WEIGHT = 3.0
TEXTURE_TV_WEIGHT = 1.0
ADAM_LR = 0.02
RANGE_WEIGHT = 1e3  # penalty on pixels outside [0, 1] (mean squared excess)

ImageLike = str | os.PathLike | Image.Image | Tensor


@dataclass
class StyleResult:
    """The optimised image (3, H, W floats in [0, 1]) and the losses after every step."""

    image: Tensor
    history: list[dict[str, float]] = field(default_factory=list)

    def to_pil(self) -> Image.Image:
        array = (self.image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(array, mode="RGB")

    def save(self, path: str | os.PathLike) -> Path:
        from ..images import save_png

        return save_png(self.to_pil(), path)


# ----------------------------------------------------------------------------- images and colour

def load_rgb(image: ImageLike, size: int | None) -> Tensor:
    """An image (path, PIL image or (3, H, W) tensor in [0, 1]) as (3, H, W) floats, longest side ``size``.
    Files and PIL images of any mode are read by :func:`~pixelforge.imageio.to_mode`'s rules: grey becomes
    RGB, 16-bit is scaled, transparency is composited on white (the result has no alpha)."""
    if isinstance(image, Tensor):
        tensor = image.detach().float()
        if tensor.dim() != 3 or tensor.shape[0] != 3:
            raise PixelforgeError(f"image tensors must be (3, H, W), not {tuple(tensor.shape)}")
        pil = None
    else:
        if not isinstance(image, Image.Image):
            image = read_image(image)
        pil = to_mode(image, "RGB")
    if pil is not None:
        if size is not None and max(pil.size) != size:
            pil = pil.resize(fitted_shape(pil, size)[::-1], Image.LANCZOS)
        return torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    if size is not None and max(tensor.shape[1:]) != size:
        tensor = torch.nn.functional.interpolate(tensor[None], size=fitted_shape(tensor, size), mode="bicubic",
                                                 antialias=True, align_corners=False)[0].clamp(0, 1)
    return tensor


# ----------------------------------------------------------------------------- the optimisation

def parse_style_mix(mix: Sequence[float] | str | None, count: int) -> list[float]:
    """Weights for ``count`` styles (equal by default), non-negative, normalised to sum to 1."""
    if mix is None:
        return [1.0 / count] * count
    if isinstance(mix, str):
        try:
            mix = [float(part) for part in mix.split(",")]
        except ValueError:
            raise PixelforgeError(f"--style-mix takes numbers separated by commas, e.g. 0.7,0.3; not {mix!r}") from None
    mix = list(mix)
    if len(mix) != count:
        raise PixelforgeError(f"--style-mix has {len(mix)} weights for {count} style image(s); give one per style")
    if any(not np.isfinite(m) or m < 0 for m in mix) or sum(mix) <= 0:
        raise PixelforgeError(f"style mix weights must be non-negative with a positive sum, not {mix}")
    total = sum(mix)
    return [m / total for m in mix]


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise PixelforgeError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def stylize(content: ImageLike | None, styles: ImageLike | Sequence[ImageLike], *,
            style_mix: Sequence[float] | str | None = None, size: int = 512, steps: int = 300,
            optimizer: str = "lbfgs", content_weight: float = DEFAULT_CONTENT_WEIGHT,
            style_weight: float = DEFAULT_STYLE_WEIGHT, tv_weight: float = DEFAULT_TV_WEIGHT,
            init: str | None = None, preserve_color: bool = False, match_colors: bool | None = None,
            scales: int = DEFAULT_SCALES, backbone="offline", weights=None,
            content_layer: str | None = None, style_layers: Sequence[str] | None = None,
            save_every: int | None = None, on_save: Callable[[int, StyleResult], None] | None = None,
            seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
            texture_size: tuple[int, int] | None = None) -> StyleResult:
    """Render ``content`` in the style of ``styles`` (see the module docstring); returns a :class:`StyleResult`.

    ``content=None`` synthesises a texture (style loss only) of ``texture_size`` (default size x size)
    from noise, with the weights and scales given here; :func:`synthesize_texture` has the defaults
    that suit textures. ``backbone`` is a name (offline, vgg19, vgg16) or a backbone module. ``on_save`` is
    called with (step, result so far) every ``save_every`` steps. ``match_colors`` (default
    :data:`DEFAULT_MATCH_COLORS`, never with ``preserve_color``) gives the content the styles' colour distribution before the optimisation
    (:func:`pixelforge.colour.transfer_colours`); the recoloured photo is both the start and the content
    target. ``scales`` > 1 optimises coarse to fine: at 1/2^(scales-1) of ``size`` first, each result
    upsampled to start the next scale; the ``steps`` are split so that each coarser scale gets twice the
    steps of the next finer one (a step there costs about a quarter).
    """
    _check_choice(optimizer, OPTIMIZERS, "optimizer")
    texture = content is None
    init = init or ("noise" if texture else "content")
    _check_choice(init, INITS, "init")
    if texture and init == "content":
        raise PixelforgeError("--init content needs a content image; textures start from noise")
    if texture and preserve_color:
        raise PixelforgeError("--preserve-color needs a content image")
    if preserve_color and match_colors:
        raise PixelforgeError("--preserve-color keeps the photo's colours; it cannot also take the style's "
                              "(--match-colors)")
    if match_colors is None:
        match_colors = DEFAULT_MATCH_COLORS and not preserve_color
    match_colors = match_colors and not texture
    if steps < 1 or size < 8 or scales < 1:
        raise PixelforgeError(f"need steps >= 1, size >= 8 and scales >= 1 (got steps={steps}, size={size}, "
                              f"scales={scales})")
    steps, size = dryrun.cap(steps, "sampling_steps"), dryrun.cap(size, "image_size")
    for name, value in (("content", content_weight), ("style", style_weight), ("tv", tv_weight)):
        if not np.isfinite(value) or value < 0:
            raise PixelforgeError(f"--{name}-weight must be a non-negative number, not {value}")
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image, Tensor)) else list(styles)
    if not styles:
        raise PixelforgeError("give at least one style image")
    mix = parse_style_mix(style_mix, len(styles))

    # Read every image before building a backbone, so a bad file fails fast; check the memory the
    # result's size needs before resizing any of them to it.
    device = resolve_device(str(device))  # "auto" too
    sources = styles if texture else [content, *styles]
    opened = [s if isinstance(s, (Tensor, Image.Image)) else read_image(s) for s in sources]
    content_image, style_images = (None, opened) if texture else (opened[0], opened[1:])
    check_memory(tuple(texture_size or (size, size)) if texture else fitted_shape(content_image, size), device)
    content_rgb = None if texture else load_rgb(content_image, size)
    style_rgbs = [load_rgb(s, size) for s in style_images]
    net = build_backbone(backbone, weights) if isinstance(backbone, str) else backbone
    net = net.to(device)
    content_layer = content_layer or net.content_layer
    style_layers = tuple(style_layers or net.style_layers)
    net.check_layers([content_layer, *style_layers])
    shortest = net.min_side(style_layers if texture else [content_layer, *style_layers])
    shape = tuple(texture_size or (size, size)) if texture else tuple(content_rgb.shape[1:])
    inputs = [("the texture" if texture else "the content image", shape)]
    inputs += [(_style_name(s), tuple(rgb.shape[1:])) for s, rgb in zip(styles, style_rgbs)]
    for what, (h, w) in inputs:
        if min(h, w) < shortest:
            hint = "raise --size" if what == "the texture" else "raise --size, or use a less elongated image"
            raise PixelforgeError(f"{what} is {w}x{h} px at --size {size}; the {net.name} feature network needs "
                                  f"at least {shortest} px on each side ({hint})")

    if match_colors:
        content_rgb = transfer_colours(content_rgb, style_rgbs, mix, seed=seed)
    if preserve_color:
        original_chroma = rgb_to_ycbcr(content_rgb)[1:]
        content_rgb = _luminance(content_rgb)
        style_rgbs = [_match_moments(_luminance(s), content_rgb) for s in style_rgbs]
    generator = torch.Generator().manual_seed(seed)
    if init == "content":
        start = content_rgb[None].clone()
    else:
        start = torch.rand(1, 1 if preserve_color else 3, *shape, generator=generator) * 0.2 + 0.4

    problem = _Problem(net, content_layer, style_layers, content_weight, style_weight, tv_weight, texture,
                       preserve_color)
    history: list[dict[str, float]] = []

    def result(x: Tensor) -> StyleResult:
        """The image so far at the full size (a coarse scale's image upsampled)."""
        with torch.no_grad():
            image = _resize(x.detach(), shape)[0].cpu()
            if preserve_color:
                image = ycbcr_to_rgb(torch.cat([image, original_chroma], dim=0))
            return StyleResult(image.clamp(0, 1), list(history))

    plan = scale_plan(shape, steps, scales, shortest, [tuple(s.shape[1:]) for s in style_rgbs])
    bar = tqdm(total=steps, desc="texture" if texture else "stylize", file=sys.stderr,
               disable=not progress or None, unit="step")
    x = None
    for side_shape, scale_steps in plan:
        x = _resize(start if x is None else x.detach(), side_shape).to(device)
        problem.set_targets(None if texture else _resize(content_rgb[None], side_shape)[0],
                            [_resize(s[None], _scaled(s.shape[1:], side_shape, shape))[0] for s in style_rgbs], mix,
                            device)
        x = problem.optimise(x, scale_steps, optimizer, history, bar, save_every,
                             (lambda step, image: on_save(step, result(image))) if on_save else None, steps)
    bar.close()
    return result(x)


PEAK_BYTES = 0.3e9, 3600  # the optimisation's peak memory, fixed + per result pixel (fp32, L-BFGS's history
# included; measured on the CPU at 512 and 768 px: 1.18 and 2.29 GB)


def fitted_shape(image: Tensor | Image.Image, size: int) -> tuple[int, int]:
    """(H, W) of ``image`` ((3, H, W) tensor or PIL image) resized to longest side ``size``."""
    h, w = image.shape[1:] if isinstance(image, Tensor) else (image.height, image.width)
    scale = size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def check_memory(shape: tuple[int, int], device) -> None:
    """Refuse a result of ``shape`` (H, W) whose optimisation would need more memory than the device has free."""
    need, free = PEAK_BYTES[0] + PEAK_BYTES[1] * shape[0] * shape[1], available_memory(device)
    if free is not None and need > free:
        raise PixelforgeError(f"a {shape[1]}x{shape[0]} px result needs about {need / 2**30:.1f} GiB of memory, "
                              f"more than the {free / 2**30:.1f} GiB free here; lower --size")


def _scaled(hw: tuple[int, int], side_shape: tuple[int, int], full_shape: tuple[int, int]) -> tuple[int, int]:
    """``hw`` scaled by the factor that takes ``full_shape`` to ``side_shape`` (at least 1 px a side)."""
    factor = max(side_shape) / max(full_shape)
    return max(1, round(hw[0] * factor)), max(1, round(hw[1] * factor))


def _resize(images: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(images.shape[-2:]) == tuple(hw):
        return images
    return torch.nn.functional.interpolate(images, size=hw, mode="bicubic", antialias=True,
                                           align_corners=False).clamp(0, 1)


def scale_plan(shape: tuple[int, int], steps: int, scales: int, shortest: int,
               others: Sequence[tuple[int, int]] = ()) -> list[tuple[tuple[int, int], int]]:
    """[(image shape, steps)] from coarse to fine: shapes halved per coarser scale, steps weighted 2^k
    towards the coarse scales and summing to ``steps``. Left out: scales at which the image or one of
    ``others`` (the style images, scaled alike) is smaller than the feature network can see, and the
    coarsest scales when there are fewer steps than scales."""
    def seen(hw: tuple[int, int]) -> bool:
        return all(min(_scaled(other, hw, shape)) >= shortest for other in (shape, *others))

    shapes = [_scaled(shape, (round(max(shape) / 2 ** k),) * 2, shape) for k in reversed(range(scales))]
    shapes = [hw for hw in shapes[:-1] if seen(hw) and hw != shape] + [shape]
    shapes = list(dict.fromkeys(shapes))[-steps:]  # at least one step per scale
    weights = [2.0 ** (len(shapes) - 1 - i) for i in range(len(shapes))]
    counts = [max(1, int(steps * w / sum(weights))) for w in weights[:-1]]
    while sum(counts) >= steps:  # tiny budgets: the finest scale still gets a step
        counts[counts.index(max(counts))] -= 1
    counts.append(steps - sum(counts))
    return [(hw, n) for hw, n in zip(shapes, counts)]


class _Problem:
    """The loss of the module docstring for one scale's targets, and its optimisation."""

    def __init__(self, net, content_layer, style_layers, content_weight, style_weight, tv_weight, texture,
                 preserve_color):
        self.net, self.content_layer, self.style_layers = net, content_layer, style_layers
        self.weights = (content_weight, style_weight, tv_weight)
        self.texture = texture
        self.to_rgb = (lambda y: y.expand(-1, 3, -1, -1)) if preserve_color else (lambda x: x)

    @torch.no_grad()
    def set_targets(self, content_rgb: Tensor | None, style_rgbs: list[Tensor], mix: list[float], device) -> None:
        grams = {}
        for style_rgb, m in zip(style_rgbs, mix):
            feats = self.net(self.to_rgb(style_rgb[None].to(device)), self.style_layers)
            for name in self.style_layers:
                grams[name] = grams.get(name, 0) + m * gram_matrix(feats[name])
        self.grams = grams
        self.layer_weights = {name: 1.0 / (len(self.style_layers) * g.pow(2).mean().clamp_min(1e-12).item())
                              for name, g in grams.items()}
        if self.texture:
            self.content_target, self.content_norm = None, 1.0
        else:
            self.content_target = self.net(self.to_rgb(content_rgb[None].to(device)),
                                           [self.content_layer])[self.content_layer]
            self.content_norm = 1.0 / self.content_target.pow(2).mean().clamp_min(1e-12).item()

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        image = self.to_rgb(x)
        layers = tuple(dict.fromkeys([*self.style_layers, *([] if self.texture else [self.content_layer])]))
        feats = self.net(image, layers)
        out = {"style": style_loss(feats, self.grams, self.layer_weights), "tv": total_variation(image)}
        out["content"] = (content_loss(feats[self.content_layer], self.content_target) * self.content_norm
                          if not self.texture else torch.zeros((), device=image.device))
        out["range"] = (x - x.clamp(0, 1)).pow(2).mean()
        content_weight, style_weight, tv_weight = self.weights
        out["total"] = (content_weight * out["content"] + style_weight * out["style"] + tv_weight * out["tv"]
                        + RANGE_WEIGHT * out["range"])
        return out

    def optimise(self, x: Tensor, steps: int, optimizer: str, history: list, bar, save_every, on_save,
                 total_steps: int) -> Tensor:
        """``steps`` steps from ``x``; appends to ``history`` and advances ``bar``; returns the image."""
        x = x.clone().requires_grad_(True)
        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=50, tolerance_grad=0.0,
                                    tolerance_change=0.0)
        else:
            opt = torch.optim.Adam([x], lr=ADAM_LR)
        last: dict[str, float] = {}
        # torch's L-BFGS is not scale-invariant: it skips curvature pairs with s.y < 1e-10, so with the tiny
        # per-pixel gradients of a large image (or small weights) it would crawl along -g forever. It optimises
        # the loss scaled so that the mean |gradient| at the start is 1; the reported losses are unscaled.
        scale = 1.0
        if optimizer == "lbfgs":
            gradient, = torch.autograd.grad(self.losses(x)["total"], x)
            scale = 1.0 / gradient.abs().mean().clamp_min(1e-30).item()

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            values = self.losses(x)
            (values["total"] * scale).backward()
            last.update({k: float(v.detach()) for k, v in values.items()})
            return values["total"] * scale

        keys = ("style", "tv") if self.texture else ("content", "style", "tv")
        for _ in range(steps):
            opt.step(closure)
            if optimizer == "adam":
                # Adam moves each pixel by at most ~lr per step, so projecting back into [0, 1] is harmless;
                # L-BFGS's curvature pairs would be corrupted by it, so there the range penalty keeps pixels in
                # range instead.
                with torch.no_grad():
                    x.clamp_(0, 1)
            step = len(history) + 1
            if not all(np.isfinite(v) for v in last.values()):
                raise PixelforgeError(f"the loss became {last['total']} at step {step}; lower the weights or "
                                      "use --optimizer adam")
            history.append({"step": step, "side": max(x.shape[-2:]), **last})
            bar.update(1)
            bar.set_postfix({k: f"{last[k]:.3g}" for k in keys})
            if save_every and on_save and step % save_every == 0 and step != total_steps:
                on_save(step, x)
        return x.detach()


def _style_name(style: ImageLike) -> str:
    return f"the style image {Path(style).name}" if isinstance(style, (str, os.PathLike)) else "the style image"


def _match_moments(source: Tensor, reference: Tensor) -> Tensor:
    """``source`` shifted and scaled to the mean and standard deviation of ``reference``."""
    return ((source - source.mean()) / source.std().clamp_min(1e-6) * reference.std() + reference.mean()).clamp(0, 1)


def synthesize_texture(styles: ImageLike | Sequence[ImageLike], *, size: int = 256, steps: int = 300,
                       scales: int = 1, style_mix: Sequence[float] | str | None = None, optimizer: str = "lbfgs",
                       style_weight: float = TEXTURE_STYLE_WEIGHT, tv_weight: float = TEXTURE_TV_WEIGHT,
                       backbone="offline", weights=None, seed: int = 0, progress: bool = True,
                       save_every: int | None = None, on_save=None, device="cpu") -> StyleResult:
    """A size x size texture with the Gram statistics of ``styles`` (style loss only, from noise)."""
    return stylize(None, styles, style_mix=style_mix, size=size, steps=steps, scales=scales, optimizer=optimizer,
                   style_weight=style_weight, tv_weight=tv_weight, backbone=backbone, weights=weights, seed=seed,
                   progress=progress, save_every=save_every, on_save=on_save, device=device)


@torch.no_grad()
def relative_losses(image: ImageLike, content: ImageLike, style: ImageLike, *, backbone="offline",
                    size: int | None = None) -> dict[str, float]:
    """The relative content and style errors of ``image`` (the L_c and L_s of the module docstring, on the
    backbone's default layers), for comparing any stylisation method with the same yardstick.
    ``content`` is resized to ``image``'s size; ``style`` is used at ``size`` (default: the image's longest side)."""
    x = load_rgb(image, size)
    c = load_rgb(content, None)
    if c.shape[1:] != x.shape[1:]:
        c = torch.nn.functional.interpolate(c[None], size=x.shape[1:], mode="bicubic", antialias=True,
                                            align_corners=False)[0].clamp(0, 1)
    s = load_rgb(style, size or max(x.shape[1:]))
    net = build_backbone(backbone) if isinstance(backbone, str) else backbone
    layers = tuple(dict.fromkeys([*net.style_layers, net.content_layer]))
    fx, fc = net(x[None], layers), net(c[None], [net.content_layer])
    fs = net(s[None], net.style_layers)
    grams = {n: gram_matrix(fs[n]) for n in net.style_layers}
    weights = {n: 1.0 / (len(grams) * g.pow(2).mean().clamp_min(1e-12).item()) for n, g in grams.items()}
    target = fc[net.content_layer]
    return {"content": float(content_loss(fx[net.content_layer], target) / target.pow(2).mean().clamp_min(1e-12)),
            "style": float(style_loss(fx, grams, weights))}
