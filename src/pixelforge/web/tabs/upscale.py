"""Upscale: super-resolution with an SR run, beside bicubic; PSNR when the upload is the reference."""

from __future__ import annotations

import torch.nn.functional as F

from ...metrics.image_quality import psnr
from ..studio import to_tensor
from . import Action, Field, Result, Tab, module_exists


def upscale(studio, v: dict) -> Result:
    from ...pipelines.sr import load_sr

    pipe = studio.load(v["model"], ["sr"], loader=load_sr)
    x = to_tensor(v["image"])
    reference = None
    if v["reference"]:  # shrink the upload first so the result can be compared with it
        reference, factor = x, pipe.scale
        x = F.interpolate(x, scale_factor=1 / factor, mode="bicubic", antialias=True).clamp(0, 1)
    out = pipe.upscale(x).float().clamp(0, 1)
    bicubic = F.interpolate(x, size=out.shape[-2:], mode="bicubic").clamp(0, 1)
    metrics = {"input": f"{x.shape[-1]}x{x.shape[-2]}", "output": f"{out.shape[-1]}x{out.shape[-2]}"}
    if reference is not None and reference.shape == out.shape:
        metrics["PSNR bicubic (dB)"] = round(float(psnr(bicubic, reference)[0]), 2)
        metrics["PSNR model (dB)"] = round(float(psnr(out, reference)[0]), 2)
    return Result(images=[("bicubic", studio.save(bicubic)), ("super-resolved", studio.save(out))],
                  metrics=metrics, layout="compare")


TAB = Tab(
    "upscale", "Upscale", "Super-resolution beside bicubic interpolation.",
    available=module_exists("pixelforge.pipelines.sr"),
    unavailable="Upscaling needs the super-resolution family, which is not part of this version of pixelforge.",
    actions=[Action("upscale", "Upscale", [
        Field("model", "run", "Model", families=["sr"]),
        Field("image", "image", "Image"),
        Field("reference", "bool", "Downscale first and measure PSNR against the upload", True),
    ], upscale)])
