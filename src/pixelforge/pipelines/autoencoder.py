"""Autoencoders from Python: ``train_autoencoder`` and :class:`AutoencoderPipeline`
(reconstruct, encode, decode, sample, interpolate, restore, latent map).

    pipe = pixelforge.train_autoencoder("fashion-mnist", "runs/vae", variational=True, minutes=5)
    codes = pipe.encode(images)                 # (N, latent_dim), or (N, latent_dim, H/4, W/4) for code="map"
    images = pipe.decode(codes)                 # (N, C, H, W) floats in [0, 1]
    restored = pipe.restore(noisy, "denoise")   # or "inpaint" with mask= / box=
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data import load_dataset, resize_images
from ..errors import PixelforgeError, RunError
from ..family import Family, Option, TrainCommand
from ..images import make_grid, pyplot, save_figure, save_gif, save_grid
from ..models.autoencoder import (AutoencoderConfig, ConvAutoencoder, bits_per_dim, discretized_logistic_nll,
                                  kl_standard_normal)
from ..registry import create_model
from ..training import Trainer
from ..training.autoencoder import AutoencoderTask, AutoencoderTrainConfig, Corruption, apply_mask
# load_codes and save_codes: part of this module's API too
from .autoencoder_files import (box_to_mask, expand_image_paths, load_codes, read_image_tensor, read_mask,  # noqa: F401
                                save_codes, save_image)
from .common import (check_resumed_conditioning, data_defaults, evaluation_data, LabelParser, load_weights_into,
                     open_model, start_session)

log = logging.getLogger("pixelforge.autoencoder")

MODELS = {False: "conv-ae", True: "conv-vae"}
RESTORE_TASKS = ("denoise", "inpaint")


def train_autoencoder(data: str | None = "fashion-mnist", run: str | os.PathLike | None = None, *,
                      variational: bool = False, conditional: bool = False, resume: bool = False,
                      overwrite: bool = False, size: int | None = None, channels: int | None = None,
                      limit: int | None = None, device: str = "auto", precision: str = "auto", seed: int = 0,
                      progress: bool = True, channels_last: bool | None = None,
                      **options: Any) -> "AutoencoderPipeline":
    """Train (or with ``resume=True`` continue) an autoencoder; ``variational`` makes it a VAE.

    ``options`` are fields of :class:`AutoencoderConfig` (latent_dim, width, code: "vector" or "map"),
    :class:`AutoencoderTrainConfig` (lr, beta, corrupt, weight_decay) and
    :class:`TrainConfig` (epochs, minutes, max_steps, batch_size, ...). ``corrupt`` (e.g.
    ``"gaussian:0.3"`` or ``"box,freeform"``) trains a denoising / inpainting autoencoder.
    """
    model = MODELS[bool(variational)]
    if not variational and options.get("beta") is not None:
        raise PixelforgeError("beta weights a VAE's KL term; a plain autoencoder has none (train a vae)")

    def model_defaults(dataset):
        if size is None and not (16 <= dataset.size <= 64 and dataset.size % 4 == 0):
            raise PixelforgeError(f"{data} images are {dataset.size} px, which autoencoders do not support; "
                                  "pass --size 28, 32 or 64")
        return data_defaults(dataset, data, conditional)

    s = start_session("autoencoder", AutoencoderTrainConfig, data, run, model=model, options=options,
                      task=AutoencoderTask,
                      resume=resume, overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, model_defaults=model_defaults, channels_last=channels_last)
    if resume and s.model_name != model:
        kind = "a VAE" if s.model_name == "conv-vae" else "a plain autoencoder"
        raise RunError(f"{s.run.path} holds {kind} ({s.model_name}); resume it with the matching command")
    if resume:  # here False is the flag's absence, not a request to drop the labels
        check_resumed_conditioning(s, conditional or None)
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    d = s.run.config["data"]
    val_data, eval_data = evaluation_data(d, d.get("limit"))
    task = AutoencoderTask(net, s.task_cfg, s.runtime, eval_data=eval_data, val_data=val_data,
                           sync_bn=s.train_cfg.sync_bn, seed=s.seed)
    Trainer(task, s.data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    net = task.net.float().eval().to(memory_format=torch.contiguous_format)
    return AutoencoderPipeline(net, s.model_cfg, s.classes, s.run.path, corrupt=s.task_cfg.corrupt,
                               data=s.run.config["data"])


class AutoencoderPipeline(LabelParser):
    """A trained autoencoder or VAE. Images go in as uint8 (0..255) or floats in [0, 1],
    (N, C, H, W), and come out as floats in [0, 1] at the model's size."""

    def __init__(self, net: ConvAutoencoder, cfg: AutoencoderConfig, classes: Sequence[str],
                 path: Path | None = None, corrupt: str = "", data: dict | None = None):
        self.net = net.eval()
        self.cfg = cfg
        self.classes = list(classes) if len(classes) == cfg.num_classes else [str(i) for i in range(cfg.num_classes)]
        self.path = path
        self.corrupt = corrupt
        self.data = data
        self.device = next(net.parameters()).device

    # -- properties ------------------------------------------------------------------------
    @property
    def variational(self) -> bool:
        return self.net.variational

    def trained_on(self, damage: str) -> bool:
        """Did training corrupt the inputs with ``damage`` ("noise" or "holes")? Runs restore
        well only the damage they were trained to undo."""
        corruption = Corruption(self.corrupt)
        return corruption.has_noise if damage == "noise" else corruption.has_holes

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    @property
    def code_shape(self) -> tuple[int, ...]:
        """One code's shape: (latent_dim,), or (latent_dim, size/4, size/4) for a map code."""
        return self.cfg.code_shape

    # -- inputs ----------------------------------------------------------------------------
    def read_image(self, path: str | os.PathLike) -> torch.Tensor:
        """An image file at its own size as uint8 (C, H, W) with the model's channels;
        a colour image for a grayscale model is refused rather than silently made grey."""
        return read_image_tensor(path, self.cfg.channels)

    def load_images(self, paths: Sequence[str | os.PathLike]) -> torch.Tensor:
        """Image files (or folders of them) -> uint8 (N, C, size, size) for the model."""
        files = expand_image_paths(paths)
        return torch.stack([self.fit_size(self.read_image(p)) for p in files])

    def fit_size(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (C, H, W) -> the model's size (shorter side resized, then center-cropped)."""
        return resize_images(image.unsqueeze(0), self.cfg.image_size)[0]

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images (N, C, size, size) -> the model's [-1, 1] input."""
        if not isinstance(images, torch.Tensor):
            raise PixelforgeError(f"images must be a tensor, got {type(images).__name__}")
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4:
            raise PixelforgeError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        c = x.shape[1]
        if c != self.cfg.channels:
            if c == 1:
                x = x.expand(-1, self.cfg.channels, -1, -1)
            else:
                raise PixelforgeError(f"this model takes {self.cfg.channels}-channel images; "
                                      f"got {c}-channel images")
        if tuple(x.shape[-2:]) != (self.cfg.image_size,) * 2:
            raise PixelforgeError(f"this model takes {self.cfg.image_size}x{self.cfg.image_size} images, got "
                                  f"{x.shape[-1]}x{x.shape[-2]} (load files with load_images, which resizes)")
        return (x * 2 - 1).to(self.device)

    def _needs_labels(self, labels, n: int) -> torch.Tensor | None:
        if self.conditional and labels is None:
            raise PixelforgeError(f"this autoencoder is class-conditional: give a label per image "
                                  f"(--labels, ids 0..{self.cfg.num_classes - 1} or class names)")
        return self.parse_labels(labels, n)

    # -- core operations -------------------------------------------------------------------
    def _batched(self, fn, x: torch.Tensor, y: torch.Tensor | None, batch_size: int = 500) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                yb = y[i:i + batch_size].to(self.device) if y is not None else None
                out.append(fn(x[i:i + batch_size].to(self.device), yb).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def encode(self, images: torch.Tensor, labels=None) -> torch.Tensor:
        """Codes (N, *code_shape): the AE's code, or the VAE's posterior mean."""
        x = self._prepare(images)
        return self._batched(self.net.code, x, self._needs_labels(labels, len(x)))

    def decode(self, codes, labels=None) -> torch.Tensor:
        """Images in [0, 1] for codes (N, *code_shape) (a tensor or numpy array)."""
        z = self.check_codes(codes)
        return self._batched(self.net.decode, z, self._needs_labels(labels, len(z))).add(1).div(2).clamp(0, 1)

    def check_codes(self, codes) -> torch.Tensor:
        if isinstance(codes, np.ndarray):
            if not np.issubdtype(codes.dtype, np.number):
                raise PixelforgeError(f"codes must be numbers, got an array of {codes.dtype}")
            codes = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.float32))
        if not isinstance(codes, torch.Tensor):
            raise PixelforgeError(f"codes must be a tensor or numpy array, got {type(codes).__name__}")
        shape = self.code_shape
        if tuple(codes.shape) == shape:
            codes = codes.unsqueeze(0)
        if tuple(codes.shape[1:]) != shape or codes.shape[0] == 0:
            want = ", ".join(map(str, ("N", *shape)))
            kind = (f"a {shape[0]}-channel {shape[1]}x{shape[2]} code map" if len(shape) == 3
                    else f"latent_dim {shape[0]}")
            raise PixelforgeError(f"codes must have shape ({want}) for this model ({kind}), got {tuple(codes.shape)}")
        codes = codes.float()
        if not torch.isfinite(codes).all():
            raise PixelforgeError("codes contain NaN or infinite values")
        return codes

    def reconstruct(self, images: torch.Tensor, labels=None) -> torch.Tensor:
        return self.decode(self.encode(images, labels), labels)

    def sample(self, n: int = 64, seed: int | None = 0, labels=None, batch_size: int = 500) -> torch.Tensor:
        """VAE samples: the likelihood mean of ``z ~ N(0, I)`` decoded, floats in [0, 1]."""
        if not self.variational:
            raise PixelforgeError("a plain autoencoder has no prior to sample from; train a vae "
                                  "(pixelforge train vae) to generate images")
        if n < 1:
            raise PixelforgeError(f"number of samples must be at least 1, not {n}")
        g = torch.Generator()
        g.seed() if seed is None else g.manual_seed(seed)
        z = torch.randn(n, *self.code_shape, generator=g)
        y = self.parse_labels(labels, n)
        return self._batched(self.net.decode, z, y, batch_size).add(1).div(2).clamp(0, 1)

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 10, labels=None) -> torch.Tensor:
        """Decoded images along the straight line between the codes of images ``a`` and ``b``
        (each (C, H, W) or (1, C, H, W)); (steps, C, H, W) in [0, 1]."""
        if steps < 2:
            raise PixelforgeError("interpolation needs at least 2 steps")
        codes = self.encode(torch.stack([_single(a), _single(b)]), labels)
        return self.interpolate_codes(codes[:1], codes[1:], steps, labels)[0]

    def interpolate_codes(self, za: torch.Tensor, zb: torch.Tensor, steps: int = 10, labels=None) -> torch.Tensor:
        """(rows, steps, C, H, W): each row walks from ``za[i]`` to ``zb[i]``."""
        t = torch.linspace(0, 1, steps).view(1, steps, *[1] * (za.dim() - 1))
        z = (za.unsqueeze(1) * (1 - t) + zb.unsqueeze(1) * t).flatten(0, 1)
        y = self.parse_labels(labels, za.shape[0])
        images = self.decode(z, y.repeat_interleave(steps) if y is not None else None)
        return images.view(za.shape[0], steps, *images.shape[1:])

    def elbo_bits_per_dim(self, images: torch.Tensor, labels=None, seed: int = 0) -> float:
        """The VAE's negative ELBO (beta = 1, one posterior sample per image) in bits/dim."""
        if not self.variational:
            raise PixelforgeError("the ELBO is defined for VAEs only")
        x = self._prepare(images)
        y = self._needs_labels(labels, len(x))
        dims = x[0].numel()
        g = torch.Generator().manual_seed(seed)
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(x), 500):
                xb = x[i:i + 500]
                yb = y[i:i + 500].to(self.device) if y is not None else None
                mu, logvar = self.net.encode(xb, yb)
                eps = torch.randn(mu.shape, generator=g).to(self.device)
                mean, log_scale = self.net.decode_params(mu + eps * torch.exp(0.5 * logvar), yb)
                nats = discretized_logistic_nll(xb, mean, log_scale) + kl_standard_normal(mu, logvar)
                total += nats.sum().item()
        return float(bits_per_dim(torch.tensor(total / len(x)), dims))

    # -- restoration -----------------------------------------------------------------------
    def restore(self, images: torch.Tensor, task: str = "denoise", mask: torch.Tensor | None = None,
                labels=None) -> torch.Tensor:
        """Denoise images, or inpaint the pixels under ``mask`` ((N or 1, 1, H, W), True = missing).

        Inpainting fills the holes with mid-grey, runs the model, and keeps the known pixels:
        only the holes change. Runs trained with matching ``--corrupt`` do this well."""
        if task not in RESTORE_TASKS:
            raise PixelforgeError(f"unknown restore task {task!r}; use {' or '.join(RESTORE_TASKS)}")
        x = self._prepare(images)
        if task == "denoise":
            if mask is not None:
                raise PixelforgeError("denoising takes no mask; use --task inpaint to fill holes")
            self._warn_untrained("noise")
            return self._batched(self.net, x, self._needs_labels(labels, len(x))).add(1).div(2).clamp(0, 1)
        if mask is None:
            raise PixelforgeError("inpainting needs the region to fill: a mask (white = missing) or a box x,y,w,h")
        mask = self.check_mask(mask, len(x))
        self._warn_untrained("holes")
        holed = apply_mask(x, mask)
        out = self._batched(self.net, holed, self._needs_labels(labels, len(x))).to(self.device)
        return torch.where(mask.to(self.device), out, x).add(1).div(2).clamp(0, 1).cpu()

    def check_mask(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        while mask.dim() < 4:
            mask = mask.unsqueeze(0)
        size = self.cfg.image_size
        if tuple(mask.shape[-2:]) != (size, size) or mask.shape[1] != 1 or mask.shape[0] not in (1, n):
            raise PixelforgeError(f"the mask must be {size}x{size} (one per image or one for all) for this "
                                  f"model, got shape {tuple(mask.shape)}")
        return mask.bool().expand(n, -1, -1, -1)

    def _warn_untrained(self, what: str) -> None:
        c = Corruption(self.corrupt)
        if (what == "noise" and not c.has_noise) or (what == "holes" and not c.has_holes):
            log.warning("this run was trained without %s corruption (--corrupt %s); expect a weak restoration",
                        what, "gaussian,saltpepper" if what == "noise" else "box,boxes,freeform")

    def restore_file(self, image: str | os.PathLike, output: str | os.PathLike, task: str = "denoise",
                     mask: str | os.PathLike | None = None, box: str | Sequence[int] | None = None,
                     labels=None, corrupt: str | None = None, seed: int = 0,
                     compare: str | os.PathLike | None = None) -> Path:
        """Restore one image file and write the result (at the model's size) to ``output``.

        ``mask``: a PNG of the image's size, white (> 127) where pixels are missing; ``box``:
        ``x,y,w,h`` in the image's pixels. ``corrupt`` first damages the image with a corruption
        spec (a demonstration on clean images); ``compare`` also writes input | restored side by side."""
        if task not in RESTORE_TASKS:
            raise PixelforgeError(f"unknown restore task {task!r}; use {' or '.join(RESTORE_TASKS)}")
        if mask is not None and box is not None:
            raise PixelforgeError("give either a mask or a box, not both")
        if task == "denoise" and (mask is not None or box is not None):
            raise PixelforgeError("--mask and --box are for --task inpaint")
        raw = self.read_image(image)
        hole = None
        if mask is not None:
            hole = read_mask(mask, raw.shape[-2:])
        elif box is not None:
            hole = box_to_mask(box, raw.shape[-2:])
        elif task == "inpaint" and not (corrupt and Corruption(corrupt).has_holes):
            raise PixelforgeError("inpainting needs the region to fill: --mask MASK.png (white = missing) "
                                  "or --box x,y,w,h")
        x = self.fit_size(raw).unsqueeze(0).float().div(255)
        if hole is not None:
            hole = resize_images(hole.to(torch.uint8).mul(255)[None, None], self.cfg.image_size)[0:1] > 0
        if corrupt:
            c = Corruption(corrupt)
            damaged, made = c(x * 2 - 1, torch.Generator().manual_seed(seed))
            x = damaged.add(1).div(2)
            if c.has_holes and hole is None:
                hole = made
        if hole is not None:
            x = torch.where(hole, torch.full_like(x, 0.5), x)  # show the holes in the input
        y = self.parse_labels(labels, 1) if labels is not None else self._needs_labels(None, 1)
        out = self.restore(x, task, hole if task == "inpaint" else None, y)
        path = save_image(out[0], output)
        if compare:
            scale = 4 if self.cfg.image_size <= 32 else 2
            save_grid(torch.cat([x, out]), compare, nrow=2, scale=scale)
        return path

    # -- pictures --------------------------------------------------------------------------
    def reconstruction_grid(self, images: torch.Tensor, path: str | os.PathLike, labels=None,
                            per_row: int = 6) -> Path:
        """Each original beside its reconstruction, ``per_row`` pairs per row."""
        x = self._prepare(images).add(1).div(2).cpu()
        rec = self.reconstruct(images, labels)
        pairs = torch.stack([x, rec], dim=1).flatten(0, 1)
        scale = 3 if self.cfg.image_size <= 32 else 2
        return save_grid(pairs, path, nrow=2 * min(per_row, len(x)), scale=scale)

    def save_interpolation(self, path: str | os.PathLike, images: torch.Tensor | None = None, rows: int = 8,
                           steps: int = 10, seed: int = 0, labels=None, fps: int = 8) -> Path:
        """Walks between pairs of codes: of ``images`` (consecutive pairs) or, for a VAE, of prior
        samples. A ``.png`` path gets a grid (one walk per row), a ``.gif`` an animation."""
        if steps < 2:
            raise PixelforgeError("interpolation needs at least 2 steps")
        if images is not None:
            if len(images) < 2 or len(images) % 2:
                raise PixelforgeError("interpolation between images takes pairs: give 2, 4, ... images")
            y = self.parse_labels(labels, len(images)) if labels is not None else self._needs_labels(None, len(images))
            codes = self.encode(images, y)
            za, zb = codes[0::2], codes[1::2]
            ya = y[0::2] if y is not None else None
        else:
            if not self.variational:
                raise PixelforgeError("a plain autoencoder has no prior to draw codes from; "
                                      "give pairs of images to interpolate between")
            g = torch.Generator().manual_seed(seed)
            za = torch.randn(rows, *self.code_shape, generator=g)
            zb = torch.randn(rows, *self.code_shape, generator=g)
            ya = self.parse_labels(labels, rows)
        walk = self.interpolate_codes(za, zb, steps, ya)
        scale = 3 if self.cfg.image_size <= 32 else 2
        if str(path).lower().endswith(".gif"):
            frames = [make_grid(walk[:, s], nrow=walk.shape[0]) for s in range(steps)]
            return save_gif(frames + frames[-2:0:-1], path, fps=fps, scale=scale)  # there and back
        return save_grid(walk.flatten(0, 1), path, nrow=steps, scale=scale)

    def latent_map(self, path: str | os.PathLike, n: int = 2000, data: str | None = None, grid: int = 15,
                   label=None) -> dict[str, Path]:
        """A scatter of test-set codes projected to 2-D (PCA, a map code flattened; the codes
        themselves for a 2-D latent), coloured by class; for a 2-D latent also ``*_manifold.png``, the decoded grid
        of codes over the region the codes occupy (their 2-98% range on each axis)."""
        d = self.data or {}
        spec = data or d.get("spec")
        if not spec:
            raise PixelforgeError("latent_map needs a dataset: pass data=")
        if spec.startswith("memory:"):
            raise PixelforgeError("this run was trained on in-memory data; pass a dataset (--data) for the map")
        split = "train" if spec.startswith("folder:") else "test"
        ds = load_dataset(spec, size=self.cfg.image_size, channels=self.cfg.channels, split=split, limit=n)
        labels = ds.labels if ds.labels is not None and ds.num_classes else None
        if self.conditional and labels is None:
            raise PixelforgeError(f"{spec} has no labels, which this conditional model needs to encode")
        codes = self.encode(ds.images, labels if self.conditional else None)
        xy, how = _project_2d(codes.flatten(1))
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=110)
        if labels is not None:
            names = ds.classes
            cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
            for k in range(len(names)):
                sel = labels == k
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, color=cmap(k % cmap.N), label=names[k])
            ax.legend(markerscale=3, fontsize=7, loc="best", framealpha=0.8)
        else:
            ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
        ax.set_title(f"{'VAE' if self.variational else 'AE'} codes of {len(codes)} {split} images ({how})")
        ax.set_xlabel("dim 1")
        ax.set_ylabel("dim 2")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = {"map": save_figure(fig, path)}
        if self.code_shape == (2,):
            # The region the codes occupy (for a VAE the posterior means need not fill the prior's bulk).
            lo, hi = torch.quantile(codes, 0.02, dim=0), torch.quantile(codes, 0.98, dim=0)
            xs, ys = (torch.linspace(float(lo[i]), float(hi[i]), grid) for i in range(2))
            zz = torch.stack(torch.meshgrid(xs, ys.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
            y = self.parse_labels(label if label is not None else 0, len(zz)) if self.conditional else None
            images = self.decode(zz, y)
            manifold = path.with_name(path.stem + "_manifold.png")
            out["manifold"] = save_grid(images, manifold, nrow=grid, scale=2 if self.cfg.image_size <= 32 else 1)
        return out


def _single(x: torch.Tensor) -> torch.Tensor:
    return x[0] if x.dim() == 4 else x


def _project_2d(codes: torch.Tensor) -> tuple[np.ndarray, str]:
    d = codes.shape[1]
    if d == 2:
        return codes.numpy(), "the 2-D codes"
    if d == 1:
        return torch.cat([codes, torch.zeros_like(codes)], 1).numpy(), "the 1-D codes"
    centred = codes - codes.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    explained = (s[:2] ** 2).sum() / (s ** 2).sum().clamp(min=1e-12)
    return (centred @ v[:2].T).numpy(), f"PCA, {explained:.0%} of the variance"


def load_autoencoder(run_dir: str | os.PathLike, device: str = "auto") -> AutoencoderPipeline:
    """Rebuild a trained autoencoder / VAE from its run directory (config.json + safetensors)."""
    r, model_cfg, net, runtime = open_model(run_dir, "autoencoder", device)
    load_weights_into(r, net, "autoencoder")
    cfg = r.config
    return AutoencoderPipeline(net.to(runtime.device), model_cfg, cfg["data"].get("classes", []), r.path,
                               corrupt=cfg.get("task", {}).get("corrupt", ""), data=cfg["data"])


def training_report(pipe: AutoencoderPipeline) -> list[str]:
    """What ``pixelforge train ae/vae`` prints: the PSNR (and ELBO) on the reported split (test, or
    a folder's validation images) and the reconstructions."""
    lines = []
    path = pipe.path / "evaluation.json"
    if path.is_file():
        ev = json.loads(path.read_text())
        what = "restoration" if ev.get("corrupt") else "reconstruction"
        split = ev.get("split", "test")
        line = f"{split} {what} PSNR: {ev[f'{split}_psnr']:.2f} dB on {ev[f'{split}_images']} images"
        if f"{split}_bpd" in ev:
            line += f"; {split} ELBO: {ev[f'{split}_bpd']:.3f} bits/dim"
        lines.append(line)
    return [*lines, f"reconstructions: {pipe.path / 'samples' / 'final_reconstruction.png'}"]


FAMILY = Family(
    "autoencoder", load_autoencoder, generates=True, interpolates="codes", exports=(AutoencoderPipeline,),
    description="autoencoders and VAEs (only VAEs sample)",
    commands=(
        TrainCommand("ae", "train a convolutional autoencoder (denoising / inpainting with --corrupt)",
                     train_autoencoder, (AutoencoderConfig, AutoencoderTrainConfig), fixed={"variational": False},
                     skip=("beta",), report=training_report,
                     options=(Option("conditional", "class-conditional encoder and decoder", group="model"),)),
        TrainCommand("vae", "train a VAE (beta-VAE, conditional VAE)", train_autoencoder,
                     (AutoencoderConfig, AutoencoderTrainConfig), fixed={"variational": True}, report=training_report,
                     options=(Option("conditional", "class-conditional encoder and decoder (CVAE)", group="model"),)),
    ))
