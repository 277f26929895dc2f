"""Image-to-image translation from Python: ``train_pix2pix``, ``train_cyclegan``,
:class:`TranslationPipeline` (``translate`` images of any size) and ``load_translation``.

Both kinds of run have the family ``translation``; the model name (``pix2pix`` or
``cyclegan``) says which. A pix2pix run translates A -> B only; a CycleGAN run both ways
(``direction="a2b"`` or ``"b2a"``).

Inference: the whole image goes through the U-Net at once (padded to the U-Net's multiple
of ``2**depth`` and cropped back) up to :data:`WHOLE_IMAGE_PIXELS`; larger images, or any
image with ``tile=N``, go in N x N cores with a margin of context around each, of which
only the core is kept. Instance norm makes each tile's output depend a little on its own
statistics, so very large margins are the safer choice when seams matter.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data import ImageData
from ..data.paired import Pairing, load_domain, load_pairs, luma, make_input
from ..data.transforms import resize_images
from ..errors import DataError, PixelforgeError, RunError
from ..family import Family, TrainCommand
from ..imageio import read_image
from ..models.translation import CycleGANConfig, Pix2PixConfig
from ..registry import create_model
from ..training import Trainer
from ..training.sr import patches
from ..training.translation import CycleGANTask, CycleGANTrainConfig, Pix2PixTask, Pix2PixTrainConfig
from .common import load_weights_into, open_model, samples_report, start_session

DEFAULT_FOLDER_SIZE = {"pix2pix": 256, "cyclegan": 128}  # px (shorter side, centre crop) for folder data
DEFAULT_BATCH = 16
WHOLE_IMAGE_PIXELS = 4_000_000  # larger inputs are translated in tiles unless a tile is given
DEFAULT_TILE = 512
MIN_SIDE = 8
DIRECTIONS = ("a2b", "b2a")  # CycleGAN runs translate both ways, pix2pix runs the first
RESIDUAL_PAIRINGS = ("gray", "blur", "lowres")  # the input is a rough output: the U-Net learns the change


def _precision(precision: str, device: str) -> str:
    """``auto`` is fp32 on the CPU: bf16 autocast measured 2-10x slower than fp32 for these
    networks (instance norm, transposed convolutions) on this project's CPUs."""
    if precision == "auto" and (device == "cpu" or (device == "auto" and not torch.cuda.is_available())):
        return "fp32"
    return precision


def _check_options(options: dict) -> None:
    """Refused before a run directory is made: these tasks do not all-reduce."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise PixelforgeError("pix2pix and CycleGAN train in one process; run them without torchrun")


def _is_folder(spec: str | None) -> bool:
    return bool(spec) and spec.strip().startswith("folder:")


def _training_images(images: torch.Tensor, crop: int) -> torch.Tensor:
    """Overlapping patches of twice the crop when the images are much larger than it (more,
    smaller items per epoch; every crop window still lies in some patch), else the images."""
    if crop and min(images.shape[-2:]) > 2 * crop:
        return patches(images, crop)
    return images


def train_pix2pix(data: str | None, run: str | os.PathLike | None = None, *, pairs: str | None = None,
                  resume: bool = False, overwrite: bool = False, size: int | None = None,
                  channels: int | None = None, limit: int | None = None, model: str = "pix2pix",
                  device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                  channels_last: bool | None = None, **options: Any) -> "TranslationPipeline":
    """Train (or with ``resume=True`` continue) pix2pix on paired data.

    ``data`` holds the targets (domain B) for a built-in pairing (``pairs`` = edges, gray,
    blur, lowres), or domain A when ``pairs="folder:PATH_TO_B"`` (files matched by name).
    ``options``: fields of :class:`Pix2PixConfig` (width, depth, d_width, d_layers, dropout,
    residual: default on for the gray, blur and lowres pairings),
    :class:`Pix2PixTrainConfig` (crop, lambda_l1, gan_weight, gan_loss, lr) and the loop's
    budget (minutes, max_steps, epochs, batch_size, ...).
    """
    precision = _precision(precision, device)
    _check_options(options)
    if pairs is not None:
        options["pairs"] = pairs
    pre_pairs = None
    if not resume:
        if data is None:
            raise PixelforgeError("pix2pix needs data: --data folder:PATH (targets, or domain A with --pairs folder:B)")
        pairing = Pairing.parse(options.setdefault("pairs", "edges"))
        if options.get("batch_size") is None:
            options["batch_size"] = DEFAULT_BATCH
        if size is None and _is_folder(data):
            size = DEFAULT_FOLDER_SIZE["pix2pix"]
        if pairing.kind == "folder":
            if not _is_folder(data):
                raise PixelforgeError("--pairs folder:B pairs two folders: give domain A as --data folder:A")
            # Checked before the run directory exists: unmatched or misaligned pairs are user errors.
            pre_pairs = load_pairs(data.split(":", 1)[1], pairing.path, size=size, channels_a=channels or 3,
                                   channels_b=channels or 3, limit=limit)
    else:
        pairing = None

    def model_defaults(dataset):
        p = Pairing.parse(options["pairs"])
        c = dataset.channels
        return {"in_channels": c if p.kind == "folder" else p.input_channels(c), "out_channels": c,
                "residual": p.kind in RESIDUAL_PAIRINGS}

    s = start_session("translation", Pix2PixTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=Pix2PixTask,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, model_defaults=model_defaults, keep_classes=False,
                      channels_last=channels_last)
    if s.model_name != "pix2pix":
        raise RunError(f"{s.run.path} is a {s.model_name} run, not a pix2pix run")
    pairing = Pairing.parse(s.task_cfg.pairs)
    if pairing.kind == "folder":
        if pre_pairs is None:
            d = s.run.config["data"]
            pre_pairs = load_pairs(d["spec"].split(":", 1)[1], pairing.path, size=d["size"],
                                   channels_a=d["channels"], channels_b=d["channels"], limit=d.get("limit"))
        images = pre_pairs[0].images
    else:
        images = s.data.images
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = Pix2PixTask(net, s.task_cfg, s.runtime)
    train = ImageData(_training_images(images, s.task_cfg.crop), None, [], s.data.name, s.data.source)
    Trainer(task, train, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return TranslationPipeline("pix2pix", {"a2b": task.G.eval()}, s.model_cfg, pairing, s.run.path)


def train_cyclegan(a: str | None, b: str | None = None, run: str | os.PathLike | None = None, *,
                   resume: bool = False, overwrite: bool = False, size: int | None = None,
                   channels: int | None = None, limit: int | None = None, model: str = "cyclegan",
                   device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                   channels_last: bool | None = None, **options: Any) -> "TranslationPipeline":
    """Train (or with ``resume=True`` continue) a CycleGAN between unpaired domains ``a`` and
    ``b`` (any dataset specs: ``folder:PATH``, ``fashion-mnist:7``, ...). B is loaded at A's
    size. ``options``: fields of :class:`CycleGANConfig`, :class:`CycleGANTrainConfig`
    (crop, lambda_cyc, lambda_id, pool_size, gan_loss, lr) and the loop's budget."""
    precision = _precision(precision, device)
    _check_options(options)
    if b is not None:
        options["b_data"] = b
    b_data = None
    b = options.get("b_data")
    if not resume:
        if a is None or not b:
            raise PixelforgeError("CycleGAN needs two domains: --a SPEC --b SPEC "
                                  "(e.g. --a fashion-mnist:7 --b fashion-mnist:9)")
        if options.get("batch_size") is None:
            options["batch_size"] = DEFAULT_BATCH
        if size is None and (_is_folder(a) or _is_folder(b)):
            size = DEFAULT_FOLDER_SIZE["cyclegan"]
        CycleGANTrainConfig(**{k: v for k, v in options.items()
                               if k in {f.name for f in dataclasses.fields(CycleGANTrainConfig)} and v is not None})
        b_data = load_domain(b, "B", size=size, channels=channels, limit=limit)

    def model_defaults(dataset):
        return {"channels_a": dataset.channels, "channels_b": b_data.channels}

    try:
        s = start_session("translation", CycleGANTrainConfig, a, run, model=model, options=options, resume=resume,
                          task=CycleGANTask,
                          overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                          precision=precision, seed=seed, model_defaults=model_defaults, keep_classes=False,
                          channels_last=channels_last)
    except DataError as e:
        raise DataError(f"domain A ({a}): {e}") from None
    if s.model_name != "cyclegan":
        raise RunError(f"{s.run.path} is a {s.model_name} run, not a CycleGAN run")
    if len(s.data) == 0:
        raise DataError(f"domain A ({a}) is empty")
    if b_data is None:
        d = s.run.config["data"]
        b_data = load_domain(s.task_cfg.b_data, "B", size=d["size"], channels=s.model_cfg.channels_b,
                             limit=d.get("limit"))
    b_images = b_data.images
    if b_images.shape[-1] != s.data.size:
        b_images = resize_images(b_images, s.data.size)
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = CycleGANTask(net, s.task_cfg, s.runtime, b_images)
    crop = s.task_cfg.crop
    train = ImageData(_training_images(s.data.images, crop), None, [], s.data.name, s.data.source)
    if crop:
        task.b_images = _training_images(b_images, crop)
    Trainer(task, train, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return TranslationPipeline("cyclegan", {"a2b": task.g_ab.eval(), "b2a": task.g_ba.eval()}, s.model_cfg,
                               None, s.run.path)


# -- inference ------------------------------------------------------------------------------

class TranslationPipeline:
    """A trained translator: ``translate`` a PIL image or file of any size (A -> B, or B -> A
    for CycleGAN), or ``translate_tensor`` float batches in [0, 1]."""

    def __init__(self, kind: str, generators: dict[str, torch.nn.Module], cfg: Pix2PixConfig | CycleGANConfig,
                 pairing: Pairing | None = None, path: Path | None = None):
        self.kind = kind
        self.generators = {k: g.eval() for k, g in generators.items()}
        self.cfg = cfg
        self.pairing = pairing
        self.path = path
        self.device = next(next(iter(generators.values())).parameters()).device

    @property
    def directions(self) -> list[str]:
        return list(self.generators)

    def channels(self, direction: str) -> tuple[int, int]:
        """(input, output) channels of one direction."""
        if self.kind == "pix2pix":
            return self.cfg.in_channels, self.cfg.out_channels
        ca, cb = self.cfg.channels_a, self.cfg.channels_b
        return (ca, cb) if direction == "a2b" else (cb, ca)

    def _direction(self, direction: str | None) -> str:
        direction = direction or DIRECTIONS[0]
        if direction not in self.generators:
            raise PixelforgeError(f"this {self.kind} run translates {' and '.join(self.directions)}, not {direction}")
        return direction

    def make_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input the run's built-in pairing derives from target images in [0, 1] (e.g. the
        gray version of a photo for a colourisation run)."""
        if self.pairing is None or self.pairing.kind == "folder":
            raise PixelforgeError("only a pix2pix run with a built-in pairing (edges, gray, blur, lowres) "
                                  "derives its input from an image")
        return (make_input(self.pairing.kind, x.float() * 2 - 1) + 1) / 2

    @torch.no_grad()
    def _net(self, g, x: torch.Tensor) -> torch.Tensor:
        return g(x.to(self.device) * 2 - 1).float().add(1).div(2).clamp(0, 1).cpu()

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, direction: str | None = None, derive: bool = False,
                         tile: int | None = None) -> torch.Tensor:
        """(N, C, H, W) floats in [0, 1] -> translated (N, C', H, W) in [0, 1]. ``derive``: make
        the input from ``x`` with the run's pairing first. ``tile``: cores of N x N px."""
        direction = self._direction(direction)
        if x.dim() != 4:
            raise PixelforgeError(f"expected images shaped (N, C, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_SIDE:
            raise PixelforgeError(f"images must be at least {MIN_SIDE}x{MIN_SIDE} px, got {tuple(x.shape[-2:])}")
        x = x.float()
        if derive:
            x = self.make_input(x)
        c_in, _ = self.channels(direction)
        if x.shape[1] != c_in:
            if x.shape[1] == 3 and c_in == 1:
                x = luma(x)
            elif x.shape[1] == 1 and c_in == 3:
                x = x.expand(-1, 3, -1, -1)
            else:
                raise PixelforgeError(f"cannot feed {x.shape[1]}-channel images to a {c_in}-channel generator")
        g = self.generators[direction]
        h, w = x.shape[-2:]
        if tile is None and h * w <= WHOLE_IMAGE_PIXELS:
            return self._net(g, x)
        tile = tile or DEFAULT_TILE
        if tile < MIN_SIDE:
            raise PixelforgeError(f"tile must be at least {MIN_SIDE} px, not {tile}")
        margin = max(32, g.multiple)
        out = None
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                iy0, ix0, iy1, ix1 = max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)
                part = self._net(g, x[..., iy0:iy1, ix0:ix1])
                if out is None:
                    out = torch.empty(x.shape[0], part.shape[1], h, w)
                out[..., y0:y1, x0:x1] = part[..., y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0]
        return out

    def translate(self, image: Image.Image | str | os.PathLike, direction: str | None = None, derive: bool = False,
                  tile: int | None = None) -> Image.Image:
        """A PIL image (or image file) translated; the result is RGB or L like the output domain."""
        image = read_image(image) if isinstance(image, (str, os.PathLike)) else image
        if image.mode not in ("L", "RGB"):
            image = image.convert("L" if image.mode in ("LA", "1", "I", "F") else "RGB")
        arr = np.asarray(image)
        x = torch.from_numpy(arr.copy()).float().div_(255)
        x = x[None, None] if x.dim() == 2 else x.permute(2, 0, 1)[None]
        y = self.translate_tensor(x, direction, derive=derive, tile=tile)[0]
        out = y.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out, mode="L" if out.shape[2] == 1 else "RGB")


def load_translation(run_dir: str | os.PathLike, device: str = "auto") -> TranslationPipeline:
    """A pix2pix or CycleGAN run's latest generator weights as a :class:`TranslationPipeline`."""
    r, cfg, net, runtime = open_model(run_dir, "translation", device)
    name = r.config["model"]["name"]
    if name == "pix2pix":
        load_weights_into(r, net.generator, "generator")
        gens = {"a2b": net.generator}
        pairing = Pairing.parse(r.config["task"]["pairs"])
    else:
        load_weights_into(r, net.g_ab, "g_ab")
        load_weights_into(r, net.g_ba, "g_ba")
        gens, pairing = {"a2b": net.g_ab, "b2a": net.g_ba}, None
    return TranslationPipeline(name, {k: g.to(runtime.device) for k, g in gens.items()}, cfg, pairing, r.path)


def interpolate_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float images resized to ``size`` x ``size`` (bilinear, antialiased): for judges of a fixed size."""
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


FAMILY = Family(
    "translation", load_translation, exports=(TranslationPipeline,), description="pix2pix and CycleGAN",
    commands=(
        TrainCommand("pix2pix", "train pix2pix (paired image-to-image translation)", train_pix2pix,
                     (Pix2PixConfig, Pix2PixTrainConfig), report=samples_report),
        TrainCommand("cyclegan", "train a CycleGAN (unpaired domains --a and --b)", train_cyclegan,
                     (CycleGANConfig, CycleGANTrainConfig), data_aliases=("--a",), report=samples_report),
    ))
