"""Inpaint: fill a region drawn over an uploaded image with a diffusion model."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ...defaults import FromAPI
from ...errors import PixelforgeError
from ...metrics.image_quality import psnr, ssim
from ..forms import Action, Field, Result, Tab, module_exists
from ..studio import to_model_tensor


def mask_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """Drawn mask (white = keep, black = fill) -> (1, 1, size, size) with 1 = keep."""
    m = np.asarray(mask.convert("L").resize((size, size), Image.NEAREST), dtype=np.float32) / 255
    t = torch.from_numpy((m > 0.5).astype(np.float32))[None, None]
    if t.min() == 1:
        raise PixelforgeError("mask: nothing to fill; draw over the part of the image to replace")
    return t


def inpaint(studio, v: dict) -> Result:
    pipe = studio.load(v["model"], ["diffusion"])
    size, channels = pipe.image_size, pipe.cfg.channels
    original = to_model_tensor(v["image"], size, channels).float() / 255
    mask = mask_tensor(v["mask"], size)
    out = pipe.inpaint(original, mask, seed=v["seed"], labels=v.get("label") or None, steps=v["steps"])
    masked = original * mask + 0.5 * (1 - mask)
    return Result(images=[("original", studio.save(original)), ("with the hole", studio.save(masked)),
                          ("inpainted", studio.save(out))],
                  metrics={"PSNR vs original (dB)": round(float(psnr(out, original)[0]), 2),
                           "SSIM vs original": round(float(ssim(out, original)[0]), 4),
                           "filled pixels": f"{float((1 - mask).mean()) * 100:.0f}%"},
                  layout="compare")


TAB = Tab(
    "inpaint", "Inpaint", "Draw over part of an image; a diffusion model fills it in (RePaint).",
    available=module_exists("pixelforge.pipelines.diffusion"),
    actions=[Action("inpaint", "Inpaint", [
        Field("model", "run", "Model", families=["diffusion"], help="a diffusion run"),
        Field("image", "image", "Image"),
        Field("mask", "mask", "Region to fill", help="paint over the part to replace"),
        Field("label", "class", "Class", required=False),
        Field("steps", "int", "Steps", FromAPI("pixelforge.pipelines.diffusion:load_diffusion", "steps"), 1, 1000),
        Field("seed", "int", "Seed", FromAPI("pixelforge.pipelines.diffusion:DiffusionPipeline.inpaint", "seed"),
              0, 2**31 - 1),
    ], inpaint)])
