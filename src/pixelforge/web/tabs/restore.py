"""Restore: denoise an image with an autoencoder run (the autoencoder family's ``restore``)."""

from __future__ import annotations

import torch

from ...metrics.image_quality import psnr
from ..studio import to_model_tensor
from . import Action, Field, Result, Tab, module_exists

FAMILIES = ["autoencoder"]


def restore(studio, v: dict) -> Result:
    from ...pipelines.autoencoder import load_autoencoder

    pipe = studio.load(v["model"], FAMILIES, loader=load_autoencoder)
    clean = to_model_tensor(v["image"], pipe.image_size, pipe.cfg.channels).float() / 255
    g = torch.Generator().manual_seed(v["seed"])
    noisy = (clean + v["noise"] * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    out = pipe.restore(noisy, "denoise").float().clamp(0, 1)
    metrics = {}
    if v["noise"] > 0:  # the upload is the reference
        metrics = {"PSNR noisy (dB)": round(float(psnr(noisy, clean)[0]), 2),
                   "PSNR restored (dB)": round(float(psnr(out, clean)[0]), 2)}
    return Result(images=[("input", studio.save(noisy)), ("restored", studio.save(out))], metrics=metrics,
                  layout="compare")


TAB = Tab(
    "restore", "Restore", "Denoise an image with an autoencoder run; PSNR against the clean upload.",
    available=module_exists("pixelforge.pipelines.autoencoder"),
    unavailable="Restoring (denoising) needs the autoencoder family, which is not part of this version of pixelforge.",
    actions=[Action("restore", "Restore", [
        Field("model", "run", "Model", families=FAMILIES),
        Field("image", "image", "Image"),
        Field("noise", "float", "Add noise (sigma)", 0.2, 0, 1, 0.05,
              help="0: the upload is already degraded (no PSNR then)"),
        Field("seed", "int", "Seed", 0, 0, 2**31 - 1),
    ], restore)])
