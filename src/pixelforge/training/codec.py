"""The codec's training task: random photo crops, one quality level drawn per image, the
rate-distortion Lagrangian of :mod:`pixelforge.models.codec`, Adam with a cosine decay.

The generic loop hands out overlapping photo patches; each step cuts a random, randomly
flipped and rotated ``crop`` x ``crop`` window out of every patch. The logged ``bpp`` and
``psnr`` are those of the noisy training proxy (the real bitstream is measured by
``pixelforge compress`` and the benchmark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..data.transforms import random_crops
from ..errors import PixelforgeError
from ..family import flag
from ..images import save_grid
from ..nn import no_sync_unless
from ..runs import Run
from ..runtime import Runtime, make_optimizer
from .task import SingleNetTask
from .lr_schedules import cosine_lr


@dataclass
class CodecTrainConfig:
    # training crop (a multiple of the model's stride)
    crop: int = flag(128, help="training crop, a multiple of 64", check="positive")
    lr: float = flag(3e-4, help="Adam's peak learning rate", check="positive")
    warmup: float = 0.02
    min_lr_factor: float = 0.05
    grad_clip: float = 1.0

    def __post_init__(self):
        if self.crop < 64 or self.crop % 64:
            raise PixelforgeError(f"codec crops must be a multiple of 64 px (the hyperprior's stride), not {self.crop}")
        if not 0 < self.lr < 1:
            raise PixelforgeError(f"lr must be in (0, 1), not {self.lr}")


class CodecTask(SingleNetTask):
    name = "codec"
    loss_keys = ("loss", "bpp")

    def __init__(self, model: nn.Module, cfg: CodecTrainConfig, runtime: Runtime):
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.net = runtime.module(model)
        self.net_train = runtime.wrap(self.net)
        self.opt = make_optimizer(torch.optim.Adam, self.net.parameters(), lr=cfg.lr)
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None

    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        lr = self.cfg.lr * cosine_lr(self.progress, self.cfg.warmup, self.cfg.min_lr_factor)
        for g in self.opt.param_groups:
            g["lr"] = lr
        x = random_crops(images, self.cfg.crop)
        quality = torch.randint(0, self.model.levels, (len(x),))
        self.net_train.train()
        self.opt.zero_grad(set_to_none=True)
        k = self.grad_accum
        totals = {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
        for i, (xb, qb) in enumerate(zip(x.chunk(k), quality.chunk(k))):
            xb = self.rt.tensor(xb)
            with no_sync_unless(self.net_train, i == k - 1), self.rt.autocast():
                out = _rate_distortion(self.net_train, xb, qb.to(xb.device))
            (out["loss"] * len(xb) / len(x)).backward()
            for key in totals:
                totals[key] += out[key].item() * len(xb) / len(x)
            self.last = (xb[:8].detach().float().cpu(), out["x_hat"][:8].detach().float().clamp(0, 1).cpu())
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.opt.step()
        psnr = 10 * math.log10(1 / max(totals["mse"], 1e-12))
        return {"loss": totals["loss"], "bpp": totals["bpp"], "psnr": psnr, "lr": lr}

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        pass

    def on_train_end(self, run: Run, step: int) -> None:
        """samples/final.png: the last training crops over their (noise-proxy) reconstructions."""
        if self.last is not None:
            save_grid(torch.cat(self.last), run.path / "samples" / "final.png", nrow=len(self.last[0]))


def _rate_distortion(net: nn.Module, x: torch.Tensor, quality: torch.Tensor) -> dict:
    model = net.module if hasattr(net, "module") and isinstance(net.module, nn.Module) else net
    if model is net:
        return model.rate_distortion(x, quality)
    # Under DDP the forward must go through the wrapper for gradient synchronisation.
    out = net(x, quality)
    return model.loss_from(out, x, quality)
