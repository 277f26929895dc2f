"""The super-resolution training task: random crops of photos, low-resolution inputs made on
the fly, an L1 or L2 pixel loss, Adam with a cosine learning-rate decay.

The generic loop hands out batches of equally sized uint8 images; for photos those are
overlapping patches cut from the photos (see :func:`patches`). Each step the task takes one
random ``crop`` x ``crop`` window of every patch, flips and rotates it at random (the 8
symmetries of the square: photos look natural in all of them), makes its low-resolution
input with :func:`~pixelforge.models.sr.downscale` (bicubic, antialiased) and trains the
network to restore the crop. The bicubic PSNR of the same crops is logged beside the
network's, so the gain over the baseline is visible while training runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import patches, random_crops  # noqa: F401  (patches: used by pipelines.sr)
from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..models.sr import downscale, upscale_bicubic
from ..nn import no_sync_unless
from ..runs import Run
from ..runtime import Runtime, make_optimizer
from .task import SingleNetTask
from .lr_schedules import cosine_lr

LOSSES = ("l1", "l2")


@dataclass
class SRTrainConfig:
    # high-resolution crop size (a multiple of the scale)
    crop: int = flag(96, help="high-resolution crop size, a multiple of the scale", check="positive")
    loss: str = flag("l1", help="pixel loss", choices=("l1", "l2"))
    lr: float = flag(1e-3, help="Adam's peak learning rate", check="positive")  # Adam's peak learning rate
    warmup: float = 0.02  # share of the budget spent ramping the learning rate up
    min_lr_factor: float = 0.02  # the cosine decay ends at lr * this

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise PixelforgeError(f"unknown super-resolution loss {self.loss!r}; use {' or '.join(LOSSES)}")
        if self.crop < 8:
            raise PixelforgeError(f"crop must be at least 8 px, not {self.crop}")
        if not 0 < self.lr < 1:
            raise PixelforgeError(f"lr must be in (0, 1), not {self.lr}")
        if not 0 <= self.warmup < 1 or not 0 <= self.min_lr_factor <= 1:
            raise PixelforgeError("warmup must be in [0, 1) and min_lr_factor in [0, 1]")


def _psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    mse = F.mse_loss(pred.float().clamp(0, 1), target.float()).item()
    return 10 * math.log10(1 / max(mse, 1e-12))


class SRTask(SingleNetTask):
    name = "sr"
    loss_keys = ("loss",)

    def __init__(self, model: nn.Module, cfg: SRTrainConfig, runtime: Runtime):
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.scale = model.cfg.scale
        if cfg.crop % self.scale:
            raise PixelforgeError(f"crop {cfg.crop} is not a multiple of scale {self.scale}")
        self.net = runtime.module(model)
        self.net_train = runtime.wrap(self.net)
        self.opt = make_optimizer(torch.optim.Adam, self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.progress = 0.0
        self.last_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # -- Task protocol ----------------------------------------------------------------
    def random_crops(self, images: torch.Tensor) -> torch.Tensor:
        return random_crops(images, self.cfg.crop)

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        lr = self.cfg.lr * cosine_lr(self.progress, self.cfg.warmup, self.cfg.min_lr_factor)
        for g in self.opt.param_groups:
            g["lr"] = lr
        hr = self.random_crops(images)
        lr_images = downscale(hr, self.scale)
        self.net_train.train()
        k = self.grad_accum
        self.opt.zero_grad(set_to_none=True)
        loss_sum, preds = 0.0, []
        for i, (x, y) in enumerate(zip(lr_images.chunk(k), hr.chunk(k))):
            x = self.rt.tensor(x)
            with no_sync_unless(self.net_train, i == k - 1), self.rt.autocast():
                pred = self.net_train(x)
            pred = pred.float()
            y = y.to(pred.device)
            err = F.l1_loss(pred, y) if self.cfg.loss == "l1" else F.mse_loss(pred, y)
            loss = err * (len(x) / len(hr))
            loss.backward()
            loss_sum += loss.item()
            preds.append(pred.detach())
        self.opt.step()
        pred = torch.cat(preds).cpu()
        self.last_batch = (lr_images[:8], pred[:8], hr[:8].cpu())
        hr_cpu = hr.cpu()
        psnr = _psnr(pred, hr_cpu)
        psnr_bicubic = _psnr(upscale_bicubic(lr_images.cpu(), self.scale), hr_cpu)
        return {"loss": loss_sum, "psnr": psnr, "psnr_gain": psnr - psnr_bicubic, "lr": lr}

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        pass

    def on_train_end(self, run: Run, step: int) -> None:
        """samples/final.png: rows of bicubic, the network and the original on the last training crops."""
        if self.last_batch is None:
            return
        lr_images, pred, hr = self.last_batch
        bicubic = upscale_bicubic(lr_images, self.scale).clamp(0, 1)
        grid = torch.cat([bicubic, pred.clamp(0, 1), hr])
        save_grid(grid, run.path / "samples" / "final.png", nrow=len(pred))
