"""The Python API; the CLI is a thin shell over these functions.

    import pixelforge
    pipe = pixelforge.train_gan("fashion-mnist", run="runs/fm", minutes=5)
    pipe = pixelforge.load("runs/fm")
    images = pipe.sample(64, seed=0)            # (64, C, H, W) floats in [0, 1]
    pixelforge.save_grid(images, "grid.png")
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from . import __version__
from .data import load_dataset
from .errors import PixelforgeError, RunError
from .images import make_grid, save_gif
from .models.gan import GAN, SIZES, GANConfig
from .registry import create_model, get_entry
from .runs import Run, atomic_write_json
from .runtime import Runtime
from .training import TrainConfig, Trainer
from .training.gan import GANTask, GANTrainConfig


def _split(options: dict, cls) -> dict:
    """The entries of ``options`` that are fields of dataclass ``cls`` and not None."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in options.items() if k in names and v is not None}


def default_run_dir(family: str, data: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in data.split(":")[0])
    return Path("runs") / f"{family}-{safe}-{stamp}"


def train_gan(data: str = "fashion-mnist", run: str | os.PathLike | None = None, *, resume: bool = False,
              overwrite: bool = False, size: int | None = None, channels: int | None = None,
              conditional: bool = False, limit: int | None = None, model: str = "dcgan",
              device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
              **options: Any) -> "GANPipeline":
    """Train (or with ``resume=True`` continue) a GAN; returns a pipeline over the result.

    ``options`` are fields of :class:`GANConfig` (latent_dim, width, d_norm),
    :class:`GANTrainConfig` (loss, lr_g, lr_d, ema_decay, diffaug, ...) and
    :class:`TrainConfig` (epochs, minutes, max_steps, batch_size, ...).
    """
    known = {f.name for c in (GANConfig, GANTrainConfig, TrainConfig) for f in dataclasses.fields(c)}
    unknown = set(options) - known
    if unknown:
        raise PixelforgeError(f"unknown GAN option(s): {', '.join(sorted(unknown))}")
    budget = _split(options, TrainConfig)
    if resume:
        if run is None:
            raise RunError("--resume needs the run directory to continue")
        r = Run.open(run)
        cfg = r.config
        if cfg.get("family") != "gan":
            raise RunError(f"{run} is a {cfg.get('family')} run, not a GAN run")
        _check_compatible(cfg, options, data, size, channels, conditional)
        model_cfg = get_entry(cfg["model"]["name"]).config_cls(**cfg["model"]["config"])
        gan_cfg = GANTrainConfig(**cfg["gan"])
        # --minutes is a budget for this invocation; epochs and steps count over the whole run.
        train_cfg = TrainConfig(**{**cfg["train"], **budget, "minutes": options.get("minutes")})
        data_cfg = cfg["data"]
        seed = cfg.get("seed", seed)
        runtime = Runtime.create(device, precision, seed=None)
        dataset = load_dataset(data_cfg["spec"], size=data_cfg["size"], channels=data_cfg["channels"],
                               limit=data_cfg.get("limit"))
        cfg["train"] = dataclasses.asdict(train_cfg)
        atomic_write_json(r.path / "config.json", cfg)
    else:
        train_cfg = TrainConfig(**budget)
        train_cfg.validate()
        runtime = Runtime.create(device, precision, seed=seed)
        dataset = load_dataset(data, size=size, channels=channels, limit=limit)
        if size is None and dataset.size not in SIZES:
            raise PixelforgeError(f"{data} images are {dataset.size} px, which GANs do not support; "
                                  f"pass --size {' or '.join(map(str, SIZES))}")
        num_classes = dataset.num_classes if conditional else 0
        if conditional and num_classes == 0:
            raise PixelforgeError(f"--conditional needs labels, but {data} has no classes "
                                  "(a folder dataset gets classes from its subfolders)")
        model_cfg = get_entry(model).config_cls(**{
            "image_size": dataset.size, "channels": dataset.channels, "num_classes": num_classes,
            **_split(options, GANConfig)})
        gan_cfg = GANTrainConfig(**_split(options, GANTrainConfig))
        data_cfg = {"spec": data, "size": dataset.size, "channels": dataset.channels,
                    "classes": dataset.classes if conditional else [], "limit": limit}
        r = Run.create(run or default_run_dir("gan", data), {
            "family": "gan", "pixelforge_version": __version__,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "model": {"name": model, "config": dataclasses.asdict(model_cfg)},
            "gan": dataclasses.asdict(gan_cfg), "train": dataclasses.asdict(train_cfg),
            "data": data_cfg, "seed": seed, "runtime": runtime.describe(),
        }, overwrite=overwrite)
    gan = create_model(r.config["model"]["name"], **dataclasses.asdict(model_cfg))
    task = GANTask(gan, gan_cfg, runtime, seed=seed)
    trainer = Trainer(task, dataset, r, train_cfg, runtime, seed=seed, progress=progress)
    trainer.fit(resume=resume)
    return GANPipeline(task.ema.module, model_cfg, r.config["data"].get("classes", []), r.path)


def _check_compatible(cfg: dict, options: dict, data, size, channels, conditional) -> None:
    stored = {**cfg["model"]["config"], **cfg["gan"]}
    clashes = [f"{k}={v!r} (run has {stored[k]!r})" for k, v in options.items()
               if v is not None and k in stored and stored[k] != v]
    d = cfg["data"]
    if data is not None and data != d["spec"]:
        clashes.append(f"data={data!r} (run has {d['spec']!r})")
    for k, v in (("size", size), ("channels", channels)):
        if v is not None and v != d[k]:
            clashes.append(f"{k}={v} (run has {d[k]})")
    if conditional and not cfg["model"]["config"].get("num_classes"):
        clashes.append("conditional (run is unconditional)")
    if clashes:
        raise RunError(f"cannot resume {cfg.get('model', {}).get('name')} run with different settings: "
                       + "; ".join(clashes))


class GANPipeline:
    """Sampling from a trained generator (the EMA weights unless told otherwise)."""

    def __init__(self, generator: torch.nn.Module, cfg: GANConfig, classes: Sequence[str], path: Path | None = None,
                 device: torch.device | None = None):
        self.generator = generator.eval()
        self.cfg = cfg
        self.classes = list(classes)
        self.path = path
        self.device = device or next(generator.parameters()).device

    @property
    def conditional(self) -> bool:
        return self.cfg.num_classes > 0

    def parse_labels(self, labels, n: int) -> torch.Tensor | None:
        """None / 'all' / ints / class names / '0,3,5' -> a (n,) label tensor cycling through them."""
        if not self.conditional:
            if labels not in (None, "", []):
                raise PixelforgeError("this GAN is unconditional: it takes no labels")
            return None
        if labels is None or labels == "all":
            ids = list(range(self.cfg.num_classes))
        else:
            items = labels.split(",") if isinstance(labels, str) else list(labels)
            ids = [self._label_id(x) for x in items]
        return torch.tensor([ids[i % len(ids)] for i in range(n)], dtype=torch.long)

    def _label_id(self, x) -> int:
        s = str(x).strip()
        if s.lstrip("-").isdigit():
            i = int(s)
        elif s in self.classes:
            i = self.classes.index(s)
        else:
            raise PixelforgeError(f"unknown label {s!r}; use 0..{self.cfg.num_classes - 1} or one of {self.classes}")
        if not 0 <= i < self.cfg.num_classes:
            raise PixelforgeError(f"label {i} out of range 0..{self.cfg.num_classes - 1}")
        return i

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Images in [0, 1] for latents ``z``; halves the batch when memory runs out."""
        out = []
        i = 0
        while i < z.shape[0]:
            zb = z[i:i + batch_size].to(self.device)
            yb = labels[i:i + batch_size].to(self.device) if labels is not None else None
            try:
                out.append(self.generator(zb, yb).float().add(1).div(2).clamp(0, 1).cpu())
            except (torch.cuda.OutOfMemoryError, MemoryError):
                if batch_size == 1:
                    raise PixelforgeError("out of memory even for a single image") from None
                batch_size = max(1, batch_size // 2)
                continue
            i += zb.shape[0]
        return torch.cat(out)

    def sample(self, n: int = 64, seed: int | None = 0, labels=None, batch_size: int = 256) -> torch.Tensor:
        if n < 1:
            raise PixelforgeError(f"number of samples must be at least 1, not {n}")
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        z = torch.randn(n, self.cfg.latent_dim, generator=g)
        return self.generate(z, self.parse_labels(labels, n), batch_size)

    def interpolate(self, path: str | os.PathLike, rows: int = 8, frames: int = 48, seed: int = 0,
                    labels=None, fps: int = 12) -> Path:
        """A looping GIF walking each of ``rows`` images through random latent keyframes (slerp)."""
        if rows < 1 or frames < 2:
            raise PixelforgeError("interpolation needs at least 1 image and 2 frames")
        g = torch.Generator().manual_seed(seed)
        keys = 4
        zk = torch.randn(keys, rows, self.cfg.latent_dim, generator=g)
        zs = []
        for f in range(frames):
            t = f / frames * keys
            k = int(t)
            zs.append(_slerp(zk[k % keys], zk[(k + 1) % keys], t - k))
        z = torch.cat(zs)
        y = self.parse_labels(labels, rows)
        y = y.repeat(frames) if y is not None else None
        imgs = self.generate(z, y)
        imgs = imgs.view(frames, rows, *imgs.shape[1:])
        scale = 3 if self.cfg.image_size <= 32 else 2
        return save_gif([make_grid(imgs[f], nrow=rows) for f in range(frames)], path, fps=fps, scale=scale)


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def load(run_dir: str | os.PathLike, device: str = "auto", ema: bool = True) -> GANPipeline:
    """Rebuild a trained model from its run directory (config.json + safetensors)."""
    r = Run.open(run_dir)
    cfg = r.config
    family = cfg.get("family")
    if family != "gan":
        raise RunError(f"{run_dir}: loading {family!r} runs is not supported by this version")
    runtime = Runtime.create(device, "fp32")
    entry = get_entry(cfg["model"]["name"])
    try:
        model_cfg = entry.config_cls(**cfg["model"]["config"])
    except TypeError as e:
        raise RunError(f"{run_dir}/config.json does not describe a {entry.name} model: {e}") from None
    gan: GAN = entry.builder(model_cfg)
    weights = r.load_weights("generator_ema" if ema else "generator")
    try:
        gan.generator.load_state_dict(weights)
    except RuntimeError as e:
        raise RunError(f"weights in {r.latest_checkpoint()} do not fit the model in config.json: "
                       f"{str(e).splitlines()[0]}") from None
    return GANPipeline(gan.generator.to(runtime.device), model_cfg, cfg["data"].get("classes", []), r.path)
