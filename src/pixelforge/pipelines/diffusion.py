"""Diffusion models from Python: ``train_diffusion`` and :class:`DiffusionPipeline`
(DDPM/DDIM sampling, classifier-free guidance, inpainting)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import load_image
from ..errors import PixelforgeError
from ..imageio import open_image, to_mode
from ..family import Family, Option, TrainCommand
from ..models.diffusion import UNetConfig
from ..registry import create_model
from ..runtime import Runtime
from ..schedulers import check_solver, sample
from ..training import Trainer
from ..training.diffusion import DiffusionTask, DiffusionTrainConfig
from .common import (LabelParser, best_checkpoint, check_resumed_conditioning, data_defaults, load_weights_into,
                     open_model, samples_report, start_session)


def train_diffusion(data: str | None = "fashion-mnist", run: str | os.PathLike | None = None, *,
                    resume: bool = False, overwrite: bool = False, size: int | None = None,
                    channels: int | None = None, conditional: bool = False, limit: int | None = None,
                    model: str = "unet", device: str = "auto", precision: str = "auto", seed: int = 0,
                    progress: bool = True, eval_samples: int = 2000, eval_steps: int = 25,
                    extractor: str | None = None, channels_last: bool | None = None,
                    **options: Any) -> "DiffusionPipeline":
    """Train (or with ``resume=True`` continue) a diffusion model; returns a pipeline over it.

    ``options`` are fields of :class:`UNetConfig` (width, channel_mult, num_res_blocks,
    patch_size, dropout, ...), :class:`DiffusionTrainConfig` (prediction, schedule, lr,
    ema_decay, min_snr, p_uncond, ...) and :class:`TrainConfig` (epochs, minutes, max_steps,
    batch_size, eval_every, ...). With ``eval_every``, FID/KID of ``eval_samples`` EMA samples
    (DDIM, ``eval_steps`` steps) are tracked and the best checkpoint kept.
    """

    def model_defaults(dataset):
        return {**data_defaults(dataset, data, conditional),
                "channel_mult": [1, 2] if dataset.size <= 32 else [1, 2, 2]}

    s = start_session("diffusion", DiffusionTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=DiffusionTask,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, model_defaults=model_defaults, keep_classes=conditional,
                      channels_last=channels_last)
    if resume:  # here False is the flag's absence, not a request to drop the labels
        check_resumed_conditioning(s, conditional or None)
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    evaluator = None
    if s.train_cfg.eval_every:
        from .evaluate import fid_evaluator  # here: the metrics (torchmetrics) take seconds to import

        evaluator = fid_evaluator(
            s.run.config["data"], eval_samples, extractor,
            lambda t: DiffusionPipeline(t.ema.module, t.model.cfg, t.cfg, s.classes, runtime=t.rt, steps=eval_steps))
    task = DiffusionTask(net, s.task_cfg, s.runtime, seed=s.seed, sync_bn=s.train_cfg.sync_bn, evaluator=evaluator)
    Trainer(task, s.data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return DiffusionPipeline(task.ema.module, s.model_cfg, s.task_cfg, s.classes, s.run.path, runtime=s.runtime)


class DiffusionPipeline(LabelParser):
    """Sampling and inpainting with a trained U-Net (its EMA weights unless told otherwise).

    The network runs under the runtime's autocast (bf16 on capable CPUs); the sampler's state
    stays in fp32.
    """

    def __init__(self, unet: torch.nn.Module, cfg: UNetConfig, train_cfg: DiffusionTrainConfig,
                 classes: Sequence[str], path: Path | None = None, runtime: Runtime | None = None,
                 steps: int = 50, guidance: float = 3.0, eta: float = 0.0, solver: str = "ddim"):
        self.runtime = runtime or Runtime.create("auto")
        self.unet = self.runtime.module(unet).eval()
        self.cfg, self.train_cfg = cfg, train_cfg
        self.schedule = train_cfg.noise_schedule()
        self.classes = list(classes)
        self.path = path
        self.steps, self.guidance, self.eta, self.solver = steps, guidance, eta, solver
        check_solver(solver, eta)

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    @property
    def sampling(self) -> dict:
        """The settings ``sample()`` uses unless told otherwise (``pixelforge eval`` records them)."""
        return {"steps": self.steps, "eta": self.eta, "solver": self.solver,
                **({"guidance": self.guidance} if self.conditional else {})}

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    def _denoiser(self, labels: torch.Tensor | None, guidance: float):
        rt, null = self.runtime, self.cfg.num_classes
        guided = labels is not None and guidance != 1.0

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with rt.autocast():
                if not guided:
                    return self.unet(rt.tensor(x), t, labels).float()
                # One batch through the net: the conditional and the unconditional branch.
                both = self.unet(rt.tensor(torch.cat([x, x])), torch.cat([t, t]),
                                 torch.cat([labels, torch.full_like(labels, null)])).float()
            cond, uncond = both.chunk(2)
            return uncond + guidance * (cond - uncond)

        return denoise

    def _check(self, steps: int, guidance: float, eta: float, solver: str) -> None:
        self.schedule.sampling_steps(steps)  # validates the step count
        if guidance < 0:
            raise PixelforgeError(f"guidance must be >= 0, not {guidance}")
        check_solver(solver, eta)

    @torch.inference_mode()
    def sample(self, n: int = 64, seed: int | None = 0, labels=None, steps: int | None = None,
               guidance: float | None = None, eta: float | None = None, batch_size: int = 64,
               progress: bool = False, solver: str | None = None) -> torch.Tensor:
        """``n`` images in [0, 1]. ``eta`` 0 = DDIM (deterministic given the seed), 1 = DDPM;
        ``solver`` ``dpm++``: DPM-Solver++(2M), deterministic, fewer steps for the same quality."""
        steps, guidance = steps or self.steps, self.guidance if guidance is None else guidance
        eta = self.eta if eta is None else eta
        solver = solver or self.solver
        if n < 1:
            raise PixelforgeError(f"number of samples must be at least 1, not {n}")
        self._check(steps, guidance, eta, solver)
        y = self.parse_labels(labels, n)
        g = torch.Generator()
        g.manual_seed(seed) if seed is not None else g.seed()
        c, s = self.cfg.channels, self.cfg.image_size
        out, i = [], 0
        bar = tqdm(total=-(-n // batch_size) * steps, desc="sample", unit="step", disable=not progress,
                   dynamic_ncols=True)
        with bar:
            while i < n:
                b = min(batch_size, n - i)
                yb = y[i:i + b].to(self.runtime.device) if y is not None else None
                try:
                    x = sample(self._denoiser(yb, guidance), self.schedule, self.train_cfg.prediction, (b, c, s, s),
                               steps=steps, eta=eta, generator=g, device=self.runtime.device,
                               progress=lambda _: bar.update(1), solver=solver)
                except (torch.cuda.OutOfMemoryError, MemoryError):
                    if batch_size == 1:
                        raise PixelforgeError("out of memory even for a single image") from None
                    batch_size = max(1, batch_size // 2)
                    continue
                out.append(x.add(1).div(2).cpu())
                i += b
        return torch.cat(out)

    def load_images(self, paths: Sequence[str | os.PathLike]) -> torch.Tensor:
        """Image files -> uint8 (N, C, H, W) at the model's size and channels."""
        if not paths:
            raise PixelforgeError("give at least one image")
        return torch.stack([load_image(p, size=self.cfg.image_size, channels=self.cfg.channels) for p in paths])

    def mask_from_box(self, box: str | Sequence[int]) -> torch.Tensor:
        """'x,y,w,h' (model pixels) -> a (1, 1, H, W) mask that is 0 inside the box."""
        try:
            x, y, w, h = (int(v) for v in (box.split(",") if isinstance(box, str) else box))
        except ValueError:
            raise PixelforgeError(f"a box is x,y,w,h in whole pixels, not {box!r}") from None
        s = self.cfg.image_size
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > s or y + h > s:
            raise PixelforgeError(f"box {x},{y},{w},{h} does not fit inside the model's {s}x{s} images")
        mask = torch.ones(1, 1, s, s)
        mask[..., y:y + h, x:x + w] = 0
        return mask

    def load_mask(self, path: str | os.PathLike) -> torch.Tensor:
        """A mask image (white = keep, black = fill), resized to the model's size -> (1, 1, H, W)."""
        from PIL import Image

        im = open_image(path)
        if im.width != im.height:
            raise PixelforgeError(f"mask {path} is {im.width}x{im.height}; it must be square like the "
                                  f"model's {self.cfg.image_size}x{self.cfg.image_size} images")
        im = to_mode(im, "L").resize((self.cfg.image_size,) * 2, Image.NEAREST)
        m = torch.from_numpy(np.asarray(im).copy()).float().div(255)
        mask = (m > 0.5).float()[None, None]
        if mask.min() == 1:
            raise PixelforgeError(f"mask {path} is white everywhere: nothing to fill (black marks the region)")
        return mask

    @torch.inference_mode()
    def inpaint(self, images: torch.Tensor, mask: torch.Tensor, seed: int = 0, labels=None,
                steps: int | None = None, resample: int = 4, guidance: float | None = None,
                progress: bool = False) -> torch.Tensor:
        """Fill the pixels where ``mask`` is 0 consistently with those where it is 1.

        ``images``: (N, C, H, W), uint8 or floats in [0, 1], at the model's size and channels;
        ``mask``: (N or 1, 1, H, W) with 1 = keep. Returns the completed images in [0, 1]."""
        images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        steps, guidance = steps or self.steps, self.guidance if guidance is None else guidance
        self._check(steps, guidance, 0.0, "ddim")
        c, s = self.cfg.channels, self.cfg.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (c, s, s):
            raise PixelforgeError(f"inpainting needs images of shape (N, {c}, {s}, {s}), not {tuple(images.shape)}")
        if mask.dim() != 4 or mask.shape[1] != 1 or tuple(mask.shape[2:]) != (s, s) or mask.shape[0] not in (1, len(images)):
            raise PixelforgeError(f"the mask must be {s}x{s} pixels, one per image or one for all; "
                                  f"got shape {tuple(mask.shape)}")
        mask = (mask > 0.5).float().expand(len(images), 1, s, s)
        y = self.parse_labels(labels, len(images))
        yb = y.to(self.runtime.device) if y is not None else None
        g = torch.Generator().manual_seed(seed)
        known = images.float() * 2 - 1
        with tqdm(total=steps, desc="inpaint", unit="step", disable=not progress, dynamic_ncols=True) as bar:
            # always DDIM: RePaint's jumps need its one-step update
            x = sample(self._denoiser(yb, guidance), self.schedule, self.train_cfg.prediction, tuple(images.shape),
                       steps=steps, generator=g, device=self.runtime.device, known=known, mask=mask,
                       resample=resample, progress=lambda _: bar.update(1))
        return (mask * known.to(x.device) + (1 - mask) * x).add(1).div(2).cpu()


def load_diffusion(run_dir: str | os.PathLike, device: str = "auto", ema: bool = True, best: bool = False,
                   precision: str = "auto", steps: int = 50, guidance: float = 3.0, eta: float = 0.0,
                   solver: str = "ddim") -> DiffusionPipeline:
    """Rebuild a trained diffusion model from its run directory (config.json + safetensors);
    ``best``: the checkpoint with the best validation FID seen by ``--eval-every``."""
    r, model_cfg, unet, _ = open_model(run_dir, "diffusion", device)
    ckpt = best_checkpoint(r) if best else None
    load_weights_into(r, unet, "unet_ema" if ema else "unet", ckpt)
    train_cfg = DiffusionTrainConfig(**r.config["task"])
    runtime = Runtime.create(device, precision)
    return DiffusionPipeline(unet, model_cfg, train_cfg, r.config["data"].get("classes", []), r.path,
                             runtime=runtime, steps=steps, guidance=guidance, eta=eta, solver=solver)


FAMILY = Family(
    "diffusion", load_diffusion, generates=True, exports=(DiffusionPipeline,), description="DDPM U-Nets",
    commands=(TrainCommand(
        "diffusion", "train a diffusion model (DDPM U-Net)", train_diffusion, (UNetConfig, DiffusionTrainConfig),
        evaluates=True, report=samples_report,
        options=(Option("conditional", "class-conditional, for classifier-free guidance", group="model"),
                 Option("eval_steps", "DDIM steps per evaluation sample", group="evaluation", check="positive"))),))
