"""Restore: an autoencoder run denoises an image, or fills a region drawn over it
(``AutoencoderPipeline.restore(images, "denoise" | "inpaint", mask=...)``). The upload is
the reference: noise is added to it / holes are cut into it, so PSNR before and after is
measured against it."""

from __future__ import annotations

import torch

from ...errors import PixelforgeError
from ...metrics.image_quality import psnr
from ..studio import to_model_tensor
from ..forms import Action, Field, Result, Tab, module_exists
from .inpaint import mask_tensor

FAMILIES = ["autoencoder"]


def _open(studio, v: dict):
    from ...pipelines.autoencoder import load_autoencoder

    pipe = studio.load(v["model"], FAMILIES, loader=load_autoencoder)
    labels = None
    if pipe.conditional:
        if not v.get("label"):
            raise PixelforgeError("Class: this autoencoder is class-conditional; choose the image's class")
        labels = pipe.parse_labels(v["label"], 1)
    clean = to_model_tensor(v["image"], pipe.image_size, pipe.cfg.channels).float() / 255
    return pipe, clean, labels


def _untrained(pipe, what: str) -> str:
    """A note when the run never saw this kind of damage in training (it restores poorly then)."""
    if what == "noise" and not pipe.trained_on("noise"):
        return "This run was trained without noise (--corrupt gaussian,...): expect a weak restoration."
    if what == "holes" and not pipe.trained_on("holes"):
        return "This run was trained without holes (--corrupt box,freeform,...): expect a weak restoration."
    return ""


def _db(x: torch.Tensor, ref: torch.Tensor) -> float:
    return round(float(psnr(x, ref)[0]), 2)


def denoise(studio, v: dict) -> Result:
    pipe, clean, labels = _open(studio, v)
    g = torch.Generator().manual_seed(v["seed"])
    noisy = (clean + v["noise"] * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    out = pipe.restore(noisy, "denoise", labels=labels).float().cpu().clamp(0, 1)
    metrics = {}
    if v["noise"] > 0:  # the upload is the reference
        metrics = {"PSNR noisy (dB)": _db(noisy, clean), "PSNR restored (dB)": _db(out, clean)}
    return Result(images=[("input", studio.save(noisy)), ("restored", studio.save(out))], metrics=metrics,
                  message=_untrained(pipe, "noise"), layout="compare")


def inpaint(studio, v: dict) -> Result:
    pipe, clean, labels = _open(studio, v)
    missing = mask_tensor(v["mask"], pipe.image_size) < 0.5  # drawn: white = keep, black = fill
    holed = torch.where(missing, torch.full_like(clean, 0.5), clean)
    out = pipe.restore(holed, "inpaint", mask=missing, labels=labels).float().cpu().clamp(0, 1)
    return Result(images=[("original", studio.save(clean)), ("with the hole", studio.save(holed)),
                          ("restored", studio.save(out))],
                  metrics={"PSNR with the hole (dB)": _db(holed, clean), "PSNR restored (dB)": _db(out, clean),
                           "filled pixels": f"{float(missing.float().mean()) * 100:.0f}%"},
                  message=_untrained(pipe, "holes"), layout="compare")


MODEL = Field("model", "run", "Model", families=FAMILIES, help="an autoencoder or VAE run")
LABEL = Field("label", "class", "Class", required=False, placeholder="choose the image's class",
              help="conditional runs: the class of the image")

TAB = Tab(
    "restore", "Restore", "Denoise an image, or fill a drawn region, with an autoencoder run; "
    "PSNR against the clean upload.",
    available=module_exists("pixelforge.pipelines.autoencoder"),
    unavailable="Restoring (denoising) needs the autoencoder family, which is not part of this version of pixelforge.",
    actions=[
        Action("denoise", "Denoise", [
            MODEL,
            Field("image", "image", "Image"),
            LABEL,
            Field("noise", "float", "Add noise (sigma)", 0.2, 0, 1, 0.05,
                  help="0: the upload is already degraded (no PSNR then)"),
            Field("seed", "int", "Seed", 0, 0, 2**31 - 1),
        ], denoise),
        Action("fill", "Fill a region", [
            MODEL,
            Field("image", "image", "Image"),
            Field("mask", "mask", "Region to fill", help="paint over the part to replace"),
            LABEL,
        ], inpaint),
    ])
