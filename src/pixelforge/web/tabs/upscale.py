"""Upscale: super-resolution with an SR run, beside bicubic; PSNR when the upload is the reference."""

from __future__ import annotations

from PIL import Image

from ...metrics.image_quality import psnr
from ..studio import to_tensor
from . import Action, Field, Result, Tab, module_exists


def upscale(studio, v: dict) -> Result:
    from ...pipelines.sr import load_sr

    pipe = studio.load(v["model"], ["sr"], loader=load_sr)
    image, reference, s = v["image"], None, pipe.scale
    if v["reference"]:  # shrink the upload first so the result can be compared with it
        reference = image.crop((0, 0, image.width // s * s, image.height // s * s))
        image = reference.resize((reference.width // s, reference.height // s), Image.BICUBIC, reducing_gap=3.0)
    out = pipe.upscale(image)
    bicubic = image.resize(out.size, Image.BICUBIC)
    metrics = {"input": f"{image.width}x{image.height}", "output": f"{out.width}x{out.height}", "scale": f"x{s}"}
    if reference is not None:
        ref = to_tensor(reference)
        metrics["PSNR bicubic (dB)"] = round(float(psnr(to_tensor(bicubic), ref)[0]), 2)
        metrics["PSNR model (dB)"] = round(float(psnr(to_tensor(out), ref)[0]), 2)
    return Result(images=[("input", studio.save(image)), ("bicubic", studio.save(bicubic)),
                          ("super-resolved", studio.save(out))], metrics=metrics, layout="compare")


TAB = Tab(
    "upscale", "Upscale", "Super-resolution beside bicubic interpolation.",
    available=module_exists("pixelforge.pipelines.sr"),
    unavailable="Upscaling needs the super-resolution family, which is not part of this version of pixelforge.",
    actions=[Action("upscale", "Upscale", [
        Field("model", "run", "Model", families=["sr"]),
        Field("image", "image", "Image"),
        Field("reference", "bool", "Downscale first and measure PSNR against the upload", True),
    ], upscale)])
