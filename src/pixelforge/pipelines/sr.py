"""Super-resolution from Python: ``train_sr``, :class:`SRPipeline` (tiled upscaling of images
of any size) and ``load_sr`` (a run directory or a shipped model).

Tiled inference: the low-resolution image is cut into ``tile`` x ``tile`` cores; each core is
processed with a margin of the network's receptive radius around it (clipped at the image
border) and only the core's part of the output is kept. Every output pixel therefore sees the
same input pixels as it would in one pass over the whole image, so the tiles join without
seams, and memory is bounded by one tile's activations plus the uint8 output image.

Colour: the networks work on RGB directly (not on the Y channel of YCbCr): one network
restores colour edges too, nothing is left to bicubic chroma, and a 3-channel first and last
layer costs next to nothing. Grayscale images go through an RGB network as three equal planes
(the output planes are averaged); a 1-channel network takes RGB images plane by plane; an
alpha channel is upscaled bicubically beside the colour.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..data import ImageData
from ..errors import PixelforgeError, RunError
from ..family import Family, Option, TrainCommand
from ..imageio import normalise_mode, read_image  # noqa: F401  (read_image: public here too)
from ..images import to_tensor
from ..models.sr import SRConfig, upscale_bicubic
from ..registry import create_model
from ..runtime import Runtime, resolve_device
from ..training import Trainer
from ..training.sr import SRTask, SRTrainConfig, patches
from ..zoo.catalog import export_run, list_pretrained, load_network, shipped_name
from .common import load_weights_into, open_model, samples_report, start_session

# The shipped weights `pixelforge upscale` uses when no --model is given, by scale.
SHIPPED = {2: "photos-sr-x2-v1", 4: "photos-sr-x4-v1"}
DEFAULT_MAX_PIXELS = 200_000_000  # output pixels; 4000x3000 at x4 is 192 MP
MIN_TILE = 16  # the smallest tile (and image side) the upscaler accepts, in input pixels
DEFAULT_TILE = 192
DEFAULT_SIZE = 512  # photos are loaded at this size (shorter side, centre crop) for training


def train_sr(data: str | None, run: str | os.PathLike | None = None, *, resume: bool = False,
             overwrite: bool = False, size: int | None = None, channels: int | None = None,
             limit: int | None = None, model: str = "edsr", device: str = "auto", precision: str = "auto",
             seed: int = 0, progress: bool = True, **options: Any) -> "SRPipeline":
    """Train (or with ``resume=True`` continue) a super-resolution network on a folder of photos.

    ``options`` are fields of :class:`SRConfig` (scale, width, blocks, residual),
    :class:`SRTrainConfig` (crop, loss, lr) and the loop's budget (minutes, max_steps,
    batch_size, ...). Photos are loaded at ``size`` px (shorter side, centre crop; default
    512) and cut into overlapping patches, from which every step takes random crops.
    """
    if not resume:
        if data is None:
            raise PixelforgeError("super-resolution needs photos: --data folder:PATH")
        options.setdefault("batch_size", None)
        if options["batch_size"] is None:
            options["batch_size"] = 16
        size = size or DEFAULT_SIZE

    s = start_session("sr", SRTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=SRTask,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, keep_classes=False,
                      model_defaults=lambda d: {"channels": d.channels})
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = SRTask(net, s.task_cfg, s.runtime)
    tiles = patches(s.data.images, s.task_cfg.crop)
    data = ImageData(tiles, None, [], s.data.name, s.data.source)
    Trainer(task, data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return SRPipeline(task.net.eval(), s.model_cfg, s.run.path)


# -- the pipeline ---------------------------------------------------------------------------

class SRPipeline:
    """A trained super-resolution network: ``upscale`` images of any size by its scale."""

    def __init__(self, net: torch.nn.Module, cfg: SRConfig, path: Path | None = None, name: str | None = None,
                 precision: str = "auto"):
        """``precision``: ``auto`` runs the network under bf16 autocast (channels_last) where the
        CPU has native bf16 (about 3x faster; the residual is added to the bicubic base in fp32,
        so 8-bit outputs differ from fp32 inference by at most one level), fp32 elsewhere."""
        device = next(net.parameters()).device
        self.runtime = Runtime.create(str(device), precision)
        self.net = self.runtime.module(net.eval())
        self.cfg = cfg
        self.path = path
        self.name = name or (f"run:{path}" if path else "sr")
        self.device = device

    @property
    def scale(self) -> int:
        return self.cfg.scale

    @property
    def margin(self) -> int:
        """Overlap kept around each tile: the network's receptive radius in input pixels."""
        return self.net.receptive_radius

    def _check_scale(self, scale: int | None) -> None:
        if scale is not None and scale != self.scale:
            where = self.name
            raise PixelforgeError(f"{where} upscales x{self.scale}, not x{scale}; use a x{scale} model "
                                  f"(shipped: {', '.join(f'x{k} {v}' for k, v in SHIPPED.items())})")

    def _check_size(self, h: int, w: int, tile: int, max_pixels: int | None) -> None:
        if tile < MIN_TILE:
            raise PixelforgeError(f"tile must be at least {MIN_TILE} px, not {tile}")
        if h < MIN_TILE or w < MIN_TILE:
            raise PixelforgeError(f"the image is {w}x{h} px, smaller than one tile of {MIN_TILE}x{MIN_TILE} px; "
                                  "there is too little to super-resolve")
        out = h * w * self.scale ** 2
        limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        if out > limit:
            raise PixelforgeError(f"the x{self.scale} output would be {w * self.scale}x{h * self.scale} = "
                                  f"{out / 1e6:.1f} MP, above the limit of {limit / 1e6:.1f} MP; "
                                  "crop or downscale the input, or raise the limit (--max-pixels)")

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """float (C, h, w) in [0, 1] -> (C, s*h, s*w) unclamped; any C the network can take."""
        c, mc = x.shape[0], self.cfg.channels
        if c == mc:
            return self._net(x[None])[0]
        if mc == 3 and c == 1:
            return self._net(x.expand(3, -1, -1)[None])[0].mean(0, keepdim=True)
        if mc == 1:
            return self._net(x[:, None])[:, 0]
        raise PixelforgeError(f"cannot feed {c}-channel images to a {mc}-channel network")

    def _net(self, batch: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast():
            return self.net(self.runtime.tensor(batch)).float()

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        """One input region (colour planes + optional alpha) -> its upscaled float output."""
        colour = 1 if x.shape[0] in (1, 2) else 3
        out = self._run(x[:colour])
        if x.shape[0] > colour:  # alpha: bicubic, not the network
            alpha = upscale_bicubic(x[colour:][None].to(self.device), self.scale)[0].float()
            out = torch.cat([out, alpha])
        return out

    def upscale_tensor(self, x: torch.Tensor, scale: int | None = None, tile: int = DEFAULT_TILE,
                       max_pixels: int | None = None, out: torch.Tensor | None = None,
                       progress: bool = False) -> torch.Tensor:
        """Upscale one float image (C, H, W) in [0, 1] (C = 1 gray, 2 gray+alpha, 3 RGB,
        4 RGBA) tile by tile; returns (C, s*H, s*W) floats in [0, 1].

        ``tile`` is the core size in input pixels (larger is faster, smaller needs less
        memory); ``out``, if given, is an (s*H, s*W, C) tensor to write into (uint8 values are
        rounded from 0..255), which keeps a huge result out of float memory.
        """
        self._check_scale(scale)
        if x.dim() != 3 or x.shape[0] not in (1, 2, 3, 4):
            raise PixelforgeError(f"expected one image shaped (C, H, W) with 1-4 channels, got {tuple(x.shape)}")
        c, h, w = x.shape
        self._check_size(h, w, tile, max_pixels)
        s, m = self.scale, self.margin
        if out is None:
            result = torch.empty(h * s, w * s, c)
        else:
            if tuple(out.shape) != (h * s, w * s, c):
                raise PixelforgeError(f"output buffer must be {(h * s, w * s, c)}, not {tuple(out.shape)}")
            result = out
        cores = [(y, xx) for y in range(0, h, tile) for xx in range(0, w, tile)]
        bar = None
        if progress and len(cores) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cores), desc=f"upscale x{s}", unit="tile", dynamic_ncols=True)
        for y0, x0 in cores:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            iy0, ix0, iy1, ix1 = max(0, y0 - m), max(0, x0 - m), min(h, y1 + m), min(w, x1 + m)
            region = self._tile(x[:, iy0:iy1, ix0:ix1].float())
            keep = region[:, (y0 - iy0) * s:(y1 - iy0) * s, (x0 - ix0) * s:(x1 - ix0) * s].clamp_(0, 1).cpu()
            keep = keep.permute(1, 2, 0)
            if result.dtype == torch.uint8:
                keep = keep.mul(255).round_().to(torch.uint8)
            result[y0 * s:y1 * s, x0 * s:x1 * s] = keep
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return result.permute(2, 0, 1) if out is None else result

    def upscale(self, image: Image.Image | str | os.PathLike, scale: int | None = None, tile: int = DEFAULT_TILE,
                max_pixels: int | None = None, progress: bool = False) -> Image.Image:
        """A PIL image (or an image file) upscaled by the network's scale, in the same mode
        (L, LA, RGB or RGBA; other modes are converted to one of these)."""
        image = read_image(image) if isinstance(image, (str, os.PathLike)) else normalise_mode(image)
        self._check_scale(scale)
        self._check_size(image.height, image.width, tile, max_pixels)
        x = to_tensor(image)
        out = torch.empty(image.height * self.scale, image.width * self.scale, x.shape[0], dtype=torch.uint8)
        self.upscale_tensor(x, tile=tile, max_pixels=max_pixels, out=out, progress=progress)
        arr = out.numpy()
        return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode=image.mode)


def load_sr(run_dir: str | os.PathLike, device: str = "auto") -> SRPipeline:
    """A super-resolution run's latest weights as an :class:`SRPipeline`."""
    r, cfg, net, runtime = open_model(run_dir, "sr", device)
    load_weights_into(r, net, "sr")
    return SRPipeline(net.to(runtime.device), cfg, r.path)


def load_shipped_sr(name: str, device: str = "auto") -> SRPipeline:
    """Shipped super-resolution weights (see ``pixelforge/zoo/MODEL_CARDS.md``)."""
    net, _ = load_network(name, "sr")
    return SRPipeline(net.to(resolve_device(device)), net.cfg, None, name=name)


def open_upscaler(model: str | os.PathLike | None, scale: int, device: str = "auto") -> SRPipeline:
    """The upscaler for ``--model``: a run directory, a shipped model (``zoo:NAME``), or (None) the
    shipped model for ``scale``."""
    if model is None:
        if scale not in SHIPPED:
            raise PixelforgeError(f"no shipped model for x{scale}; shipped scales: "
                                  f"{', '.join(f'x{k}' for k in SHIPPED)}")
        pipe = load_shipped_sr(SHIPPED[scale], device)
    elif Path(model).is_dir():
        pipe = load_sr(model, device)
    else:
        if shipped_name(model) not in list_pretrained("sr"):
            raise RunError(f"--model {model}: neither a run directory nor a shipped super-resolution model "
                           f"(shipped: {', '.join('zoo:' + n for n in list_pretrained('sr'))})")
        pipe = load_shipped_sr(shipped_name(model), device)
    pipe._check_scale(scale)
    return pipe


def export_sr(run_dir: str | os.PathLike, name: str, command: str, extra: dict | None = None,
              dest: Path | None = None) -> Path:
    """Copy a super-resolution run's weights (fp16 safetensors) and a JSON card into the zoo."""
    return export_run(run_dir, name, "sr", command, extra, dest)


FAMILY = Family(
    "sr", load_sr, load_shipped=load_shipped_sr, exports=(SRPipeline, open_upscaler), description="super-resolution",
    commands=(TrainCommand(
        "sr", "train a super-resolution network on photos (folder:PATH)", train_sr, (SRConfig, SRTrainConfig),
        report=samples_report,
        options=(Option("model", "edsr (residual network) or espcn (3 convolutions, fastest)", flag="--arch",
                        choices=("edsr", "espcn"), group="model"),)),))
