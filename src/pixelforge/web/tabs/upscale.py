"""Upscale: super-resolution (a shipped model or an SR run) beside bicubic; PSNR when the
upload is the reference.

The result is limited like an upload: the upscaled image may have at most the studio's
megapixel limit (``--max-megapixels``), so a large photo at x4 is refused with a message
before any work starts (the CLI, ``pixelforge upscale``, handles photos of any size)."""

from __future__ import annotations

from PIL import Image

from ...errors import PixelforgeError
from ...metrics.image_quality import psnr
from ..studio import to_tensor
from ..forms import Action, Field, Result, Tab, module_exists

FAMILIES = ["sr"]
DEFAULT_MODEL = "zoo:photos-sr-x4-v1"


def upscale(studio, v: dict) -> Result:
    from ...pipelines.sr import MIN_TILE, load_sr

    pipe = studio.load(v["model"], FAMILIES, loader=load_sr)
    image, reference, s = v["image"], None, pipe.scale
    if v["reference"]:  # shrink the upload first so the result can be compared with it
        if image.width // s < MIN_TILE or image.height // s < MIN_TILE:
            raise PixelforgeError(f"Image: {image.width}x{image.height} is too small to shrink x{s} and super-resolve "
                                  f"(at least {MIN_TILE * s}x{MIN_TILE * s} px with the PSNR check; untick it to "
                                  f"upscale the upload itself)")
        reference = image.crop((0, 0, image.width // s * s, image.height // s * s))
        image = reference.resize((reference.width // s, reference.height // s), Image.BICUBIC, reducing_gap=3.0)
    out_w, out_h = image.width * s, image.height * s
    if out_w * out_h > studio.max_pixels:
        raise PixelforgeError(f"Image: x{s} would make {image.width}x{image.height} into {out_w}x{out_h} = "
                              f"{out_w * out_h / 1e6:.1f} MP, over the studio's {studio.max_pixels / 1e6:g} MP limit; "
                              "crop or downscale the upload, choose a x2 model, tick the PSNR check, or use "
                              "`pixelforge upscale` for large photos")
    out = pipe.upscale(image, max_pixels=studio.max_pixels)
    bicubic = image.resize(out.size, Image.BICUBIC)
    metrics = {"model": v["model"].removeprefix("zoo:"), "input": f"{image.width}x{image.height}",
               "output": f"{out.width}x{out.height}", "scale": f"x{s}"}
    if reference is not None:
        ref = to_tensor(reference)
        metrics["PSNR bicubic (dB)"] = round(float(psnr(to_tensor(bicubic), ref)[0]), 2)
        metrics["PSNR model (dB)"] = round(float(psnr(to_tensor(out), ref)[0]), 2)
    return Result(images=[("input", studio.save(image)), ("bicubic", studio.save(bicubic)),
                          ("super-resolved", studio.save(out))], metrics=metrics, layout="compare")


TAB = Tab(
    "upscale", "Upscale", "Super-resolution (x2 or x4) beside bicubic interpolation.",
    available=module_exists("pixelforge.pipelines.sr"),
    unavailable="Upscaling needs the super-resolution family, which is not part of this version of pixelforge.",
    actions=[Action("upscale", "Upscale", [
        Field("model", "run", "Model", DEFAULT_MODEL, families=FAMILIES,
              help="a shipped model (photos-sr-x2-v1, photos-sr-x4-v1) or an sr run"),
        Field("image", "image", "Image"),
        Field("reference", "bool", "Downscale first and measure PSNR against the upload", True,
              help="untick to upscale the upload itself (no PSNR then)"),
    ], upscale)])
