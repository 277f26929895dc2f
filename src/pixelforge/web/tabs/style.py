"""Style: Gatys et al.'s optimisation (``pixelforge.pipelines.style``) with the offline backbone.

*Stylize* renders an uploaded content image after an uploaded style image; *Texture* makes a
new square texture from a style image alone. Both optimise the picture itself, so the cost
grows with size^2 x steps: the defaults answer in a few seconds on a CPU, and the studio
refuses more than :data:`MAX_WORK` (about 30 s on a 2-core CPU) with a message before any work
starts (``pixelforge stylize`` has no such limit). The package ships no example style images,
so the style is always an upload. Only the offline backbone is offered: the VGG backbones need
weight files the studio cannot ask for.
"""

from __future__ import annotations

import time

import torch
from PIL import Image

from ...defaults import FromAPI, default_in
from ...errors import PixelforgeError
from ..forms import Action, Field, Result, Tab, module_exists

STYLIZE = "pixelforge.pipelines.style:stylize"
STYLIZER = "pixelforge.pipelines.stylizer"
STYLIZE_SCALES = FromAPI(STYLIZE, "scales")
METHODS = FromAPI("pixelforge.pipelines.style:OPTIMIZERS")
MAX_SIZE = 512
MAX_STEPS = 500
# The studio's own starting points, below the API's (300 steps at 512 px take minutes on a CPU):
STEPS, SIZE, TEXTURE_SIZE, TEXTURE_METHOD = 100, 192, 128, "adam"
MAX_WORK = 256 * 256 * 200  # size^2 x steps: 256 px at 200 L-BFGS steps took ~30 s on one CPU thread
_BACKBONES: dict[str, torch.nn.Module] = {}


def _shortest_side() -> int:
    """The smallest image side the studio's backbone sees at every layer it uses."""
    with torch.inference_mode(False):  # the cached backbone must stay usable for gradients
        net = _backbone(torch.device("cpu"))
    return net.min_side([net.content_layer, *net.style_layers])


def _work(size: int, steps: int, scales: int, shortest: int) -> int:
    """size^2 x steps of an optimisation, each coarse-to-fine scale's steps counted at that scale's size."""
    from ...pipelines.style import scale_plan

    return sum(max(hw) ** 2 * n for hw, n in scale_plan((size, size), steps, scales, shortest))


def check_work(size: int, steps: int, scales: int = 1) -> None:
    """Refuse a request whose work (:func:`_work`) is over :data:`MAX_WORK`, naming what would fit."""
    shortest = _shortest_side()
    work = _work(size, steps, scales, shortest)
    if work > MAX_WORK:
        fit_steps = max((n for n in range(1, steps) if _work(size, n, scales, shortest) <= MAX_WORK), default=0)
        fit_size = max((side for side in range(16, size) if _work(side, steps, scales, shortest) <= MAX_WORK),
                       default=0)
        raise PixelforgeError(
            f"Size x steps: {size} px with {steps} steps ({work // 1000}k px^2 x steps) is too much work for the "
            f"studio (at most {MAX_WORK // 1000}k, about 30 s on a CPU); at {size} px use at most {fit_steps} steps, "
            f"or at {steps} steps at most {fit_size} px; `pixelforge stylize` has no limit")


def _device(studio) -> torch.device:
    from ...runtime import resolve_device

    return resolve_device(studio.device)


def _backbone(device: torch.device) -> torch.nn.Module:
    """The offline backbone, built once per device (outside inference mode: it is differentiated through)."""
    key = str(device)
    if key not in _BACKBONES:
        from ...pipelines.style import build_backbone

        _BACKBONES[key] = build_backbone("offline").to(device).eval()
    return _BACKBONES[key]


def _as_pil(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def _run(studio, content: Image.Image | None, style: Image.Image, v: dict, size: int):
    """Optimise with gradients on: the studio runs handlers in inference mode, which would forbid them."""
    from ...pipelines.style import load_rgb, stylize, synthesize_texture

    with torch.inference_mode(False), torch.enable_grad():
        device = _device(studio)
        net = _backbone(device)
        style_rgb = load_rgb(style, size)
        content_rgb = None if content is None else load_rgb(content, size)
        kwargs = {} if content is not None else {name: default_in(synthesize_texture, name)
                                                 for name in ("style_weight", "tv_weight", "scales")}
        kwargs.update({api: v[name] for name, api in (("strength", "style_weight"), ("seed", "seed"),
                                                      ("preserve_color", "preserve_color")) if name in v})
        if "match_colors" in v:  # preserving the photo's colours wins over taking the style's
            kwargs["match_colors"] = v["match_colors"] and not v.get("preserve_color")
        start = time.perf_counter()
        result = stylize(content_rgb, style_rgb, size=size, steps=v["steps"], optimizer=v["method"], backbone=net,
                         device=device, progress=False, **kwargs)
        seconds = time.perf_counter() - start
    return content_rgb, style_rgb, result, seconds


def _losses(result, keys) -> dict:
    last = result.history[-1]
    return {f"final {k} error": round(last[k], 4) for k in keys}


def stylize_action(studio, v: dict) -> Result:
    check_work(v["size"], v["steps"], STYLIZE_SCALES.value)
    content_rgb, style_rgb, result, seconds = _run(studio, v["content"], v["style"], v, v["size"])
    h, w = result.image.shape[1:]
    metrics = {"method": f"Gatys, {'L-BFGS' if v['method'] == 'lbfgs' else 'Adam'}, offline backbone",
               "size": f"{w}x{h}", "steps": v["steps"], "style weight": v["strength"],
               "preserve color": "yes" if v["preserve_color"] else "no",
               "style's colours": "yes" if v["match_colors"] and not v["preserve_color"] else "no",
               **_losses(result, ("content", "style")), "time (s)": round(seconds, 2)}
    return Result(images=[("content", studio.save(_as_pil(content_rgb))), ("style", studio.save(_as_pil(style_rgb))),
                          ("result", studio.save(result.to_pil()))], metrics=metrics, layout="compare")


def texture_action(studio, v: dict) -> Result:
    check_work(v["size"], v["steps"])
    _, style_rgb, result, seconds = _run(studio, None, v["style"], v, v["size"])
    h, w = result.image.shape[1:]
    metrics = {"method": f"Gatys texture synthesis, {'L-BFGS' if v['method'] == 'lbfgs' else 'Adam'}",
               "size": f"{w}x{h}", "steps": v["steps"], "seed": v["seed"], **_losses(result, ("style",)),
               "time (s)": round(seconds, 2)}
    return Result(images=[("style", studio.save(_as_pil(style_rgb))), ("texture", studio.save(result.to_pil()))],
                  metrics=metrics, layout="compare")


MAX_MODEL_SIZE = 1024  # trained models: longest side of the content (larger uploads are scaled down)


def model_action(studio, v: dict) -> Result:
    """A shipped or trained feed-forward stylizer (its own style) or AdaIN model (the uploaded style, ``alpha``)."""
    from ...pipelines.stylizer import load_stylizer

    pipe = studio.load(v["model"], ["style"], loader=load_stylizer)
    content = v["content"].convert("RGB")
    style = v.get("style")
    if pipe.kind == "feed-forward" and style is not None:
        raise PixelforgeError(f"{v['model']} is a feed-forward stylizer with its style built in; leave the style "
                              "image empty (AdaIN runs take one)")
    alpha = v.get("alpha") if pipe.kind == "adain" else None
    refine = v.get("refine_alpha") if pipe.kind == "adain" else None
    scale = v.get("content_scale") if pipe.kind == "adain" else None
    size = min(MAX_MODEL_SIZE, max(content.size))
    own = pipe.net.cfg if pipe.kind == "adain" else None  # the cached model's settings, back after this request
    start = time.perf_counter()
    try:
        if refine is not None:
            pipe.set_refine_strength(refine)
        if scale is not None:
            pipe.set_content_scale(scale)
        used = pipe.net.cfg
        result = pipe.stylize(content, style=style, alpha=alpha, size=size)
    finally:
        if own is not None:
            pipe.net.cfg = own
    seconds = time.perf_counter() - start
    metrics = {"method": "feed-forward network (Johnson et al.)" if pipe.kind == "feed-forward"
               else "AdaIN (Huang & Belongie)", "model": v["model"], "size": f"{result.width}x{result.height}",
               "time (s)": round(seconds, 3)}
    images = [("content", studio.save(content.resize(result.size, Image.LANCZOS)))]
    if pipe.kind == "adain":
        metrics["alpha"] = alpha
        if pipe.net.refiner is not None:
            metrics["refine strength"] = used.refine_alpha
        metrics["content scale"] = used.content_scale
        images.append(("style", studio.save(style.convert("RGB"))))
    elif pipe.path is not None:  # a run keeps the style it was trained on; shipped weights do not
        from ...pipelines.style import load_rgb

        images.append(("style (trained)", studio.save(_as_pil(load_rgb(pipe.path / "style.png", None)))))
    images.append(("result", studio.save(result)))
    return Result(images=images, metrics=metrics, layout="compare")


def _method(default: str | FromAPI, help: str) -> Field:
    return Field("method", "select", "Optimiser", default, options=METHODS, help=help)


def _steps(default: int) -> Field:
    return Field("steps", "int", "Steps", default, 1, MAX_STEPS, 1,
                 help=f"at most {MAX_STEPS}, and size^2 x steps (coarse scales' steps at their size) at most that "
                      "of 256 px x 200 steps")


TAB = Tab(
    "style", "Style", "Restyle a content image after a style image (Gatys et al.), or synthesise a texture; "
    "content, style and result side by side.",
    available=module_exists("pixelforge.pipelines.style"),
    unavailable="Style transfer is not part of this version of pixelforge.",
    actions=[
        Action("stylize", "Stylize", [
            Field("content", "image", "Content image"),
            Field("style", "image", "Style image", help="this version ships no example styles: upload a painting"),
            _method(FromAPI(STYLIZE, "optimizer"),
                    "L-BFGS (Gatys et al.) converges in fewer steps; Adam is slower but never jumps"),
            Field("strength", "float", "Style strength (style weight)", FromAPI(STYLIZE, "style_weight"), 0, 1000, 1,
                  help="raise it for a stronger style, lower it to keep more of the photo"),
            _steps(STEPS),
            Field("size", "int", "Size (longest side, px)", SIZE, 16, MAX_SIZE, 1,
                  help=f"both images are scaled to it; at most {MAX_SIZE}"),
            Field("match_colors", "bool", "Take the style's colours",
                  FromAPI("pixelforge.pipelines.style:DEFAULT_MATCH_COLORS"),
                  help="recolour the photo with the style's palette before painting"),
            Field("preserve_color", "bool", "Preserve the content's colours", FromAPI(STYLIZE, "preserve_color"),
                  help="luminance-only transfer: only brightness patterns come from the style (wins over "
                       "taking the style's colours)"),
        ], stylize_action),
        Action("texture", "Texture", [
            Field("style", "image", "Style image", help="an example of the texture"),
            _method(TEXTURE_METHOD,
                    "Adam by default: from flat noise at small sizes L-BFGS needs hundreds of steps to get going"),
            _steps(STEPS),
            Field("size", "int", "Size (px, square)", TEXTURE_SIZE, 16, MAX_SIZE, 1, help=f"at most {MAX_SIZE}"),
            Field("seed", "int", "Seed", FromAPI(STYLIZE, "seed"), 0, 2**31 - 1),
        ], texture_action),
        Action("model", "Trained model", [
            Field("model", "run", "Model", FromAPI(f"{STYLIZER}:SHIPPED_ADAIN", then=lambda name: f"zoo:{name}"),
                  families=["style"],
                  help="a feed-forward stylizer (its style is built in) or an AdaIN model (any style image): "
                       "shipped, or a run"),
            Field("content", "image", "Content image", help=f"scaled down to {MAX_MODEL_SIZE} px if larger"),
            Field("style", "image", "Style image (AdaIN models)", required=False,
                  help="AdaIN models only; leave empty for a feed-forward stylizer"),
            Field("alpha", "float", "Style strength alpha (AdaIN)",
                  FromAPI("pixelforge.pipelines.stylizer:DEFAULT_ALPHA"), 0, 1, 0.05,
                  help="0 = the content, 1 = the full style"),
            Field("refine_alpha", "float", "Finer second pass strength (AdaIN)", None, 0, 1, 0.05, required=False,
                  placeholder="the model's",
                  help="AdaIN models with a refine pass: 0 = the first pass only, 1 = the full second pass"),
            Field("content_scale", "float", "Stroke size: content scale (AdaIN)", None, 0.25, 1, 0.05, required=False,
                  placeholder="the model's",
                  help="AdaIN: stylise the content at this fraction of its size and enlarge the result back: "
                       "larger strokes, less detail"),
        ], model_action),
    ])
