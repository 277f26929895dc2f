"""GANs from Python: ``train_gan`` and :class:`GANPipeline` (sampling, interpolation)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data import ImageData
from ..data.clusters import cluster_labels
from ..errors import PixelforgeError, RunError
from ..family import Family, Option, TrainCommand
from ..images import make_grid, save_gif
from ..models.gan import SIZES, GANConfig, check_size
from ..registry import create_model
from ..training import Trainer
from ..training.gan import GANTask, GANTrainConfig, check_penalty_norm
from ..training.loop import TrainConfig
from .common import (LabelParser, best_checkpoint, check_resumed_conditioning, data_defaults, load_weights_into,
                     open_model, samples_report, start_session)


def train_gan(data: str | None = "fashion-mnist", run: str | os.PathLike | None = None, *, resume: bool = False,
              overwrite: bool = False, size: int | None = None, channels: int | None = None,
              conditional: bool | None = None, limit: int | None = None, model: str = "dcgan",
              device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
              eval_samples: int = 2000, extractor: str | None = None, channels_last: bool | None = None,
              spectral_norm: bool = False, random_crops: bool | None = None, clusters: int | None = None,
              **options: Any) -> "GANPipeline":
    """Train (or with ``resume=True`` continue) a GAN; returns a pipeline over the result.

    ``options`` are fields of :class:`GANConfig` (latent_dim, width, d_norm),
    :class:`GANTrainConfig` (loss, lr_g, lr_d, ema_decay, diffaug, ...) and
    :class:`TrainConfig` (epochs, minutes, max_steps, batch_size, eval_every, ...).
    With ``eval_every``, FID/KID of ``eval_samples`` EMA samples are tracked through the
    judge network ``extractor`` and the best checkpoint is kept in checkpoints/best.

    ``conditional=None`` (the default) trains a class-conditional GAN when the data has
    classes and an unconditional one otherwise; True requires labels, False ignores them.
    At equal steps the labels buy far more quality than any other change tried
    (docs/gan.md: FID 0.35 against 1.51 on Fashion-MNIST at 5,264 steps).
    ``clusters=k`` conditions an unconditional GAN (data without labels, or labels ignored) on
    k k-means clusters of the training images instead (:mod:`pixelforge.data.clusters`); samples
    then draw their clusters by the clusters' shares of the training images. None (the default):
    :func:`auto_clusters` for a new unconditional run on whole images (:data:`AUTO_CLUSTERS`, fewer
    for small datasets); 0: none. On resume: the run's.
    ``spectral_norm=True`` is ``d_norm="sn"``; with ``loss="wgan-gp"`` a new run's D has no
    normalisation, with ``r1_gamma`` spectral norm, unless ``d_norm`` says otherwise (gradient
    penalties need a D without batch norm); with ``rotation`` (self-supervised D) a new run's D
    gets a rotation head.
    ``random_crops=True`` (folder data) trains on random ``size`` crops of the whole photos, many
    per photo and epoch, instead of one centre crop per file (:mod:`pixelforge.data.crops`);
    None: off for a new run, the run's choice on resume.
    """
    if size is not None:
        check_size(size)  # before the data is decoded
    if spectral_norm:
        if options.get("d_norm") not in (None, "sn"):
            raise PixelforgeError("--spectral-norm contradicts --d-norm " + options["d_norm"])
        options["d_norm"] = "sn"
    if options.get("loss") == "wgan-gp" and options.get("d_norm") is None and not resume:
        options["d_norm"] = "none"
    if options.get("r1_gamma") and options.get("d_norm") is None and not resume:
        options["d_norm"] = "sn"
    check_penalty_norm(options.get("loss"), options.get("r1_gamma"), options.get("d_norm"))  # before the run folder
    if options.get("rotation") and not resume:
        options["rotation_head"] = True
    group, batch = options.get("minibatch_std"), options.get("batch_size", TrainConfig.batch_size)
    if group and group > 1 and batch % group:  # before the run folder (the model checks every batch too)
        raise PixelforgeError(f"--minibatch-std {group} needs a --batch-size that divides into groups of {group}, "
                              f"not {batch}")
    if clusters is not None and clusters < 0:
        raise PixelforgeError(f"--clusters must be >= 0, not {clusters}")
    if clusters and conditional:
        raise PixelforgeError("--clusters stands in for labels: it does not combine with --conditional")
    if clusters and random_crops:
        raise PixelforgeError(CLUSTERS_NEED_WHOLE_IMAGES)

    def model_defaults(dataset):
        if size is None and dataset.size not in SIZES:
            raise PixelforgeError(f"{data} images are {dataset.size} px, which GANs do not support; "
                                  f"pass --size {' or '.join(map(str, SIZES))}")
        use_labels = dataset.num_classes > 0 if conditional is None else conditional
        k = clusters
        if k is None:
            k = 0 if use_labels or random_crops else auto_clusters(len(dataset))
        if k > len(dataset):  # before the run folder is made
            raise PixelforgeError(f"cannot make {k} clusters of {len(dataset)} images; use --clusters between 1 "
                                  f"and {len(dataset)}, or 0 for none")
        if k:
            return {**data_defaults(dataset, data, False), "num_classes": k, "clusters": k}
        return data_defaults(dataset, data, use_labels)

    s = start_session("gan", GANTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=GANTask,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, model_defaults=model_defaults,
                      keep_classes=conditional is not False and not clusters,
                      channels_last=channels_last, random_crops=random_crops)
    if resume:
        # a GAN conditioned on clusters of its images is unconditional to its user
        check_resumed_conditioning(s, conditional, has_labels=s.model_cfg.num_classes > 0 and not s.model_cfg.clusters)
        if clusters is not None and clusters != s.model_cfg.clusters:
            raise RunError(f"cannot resume {s.run.path} with --clusters {clusters}: the run has {s.model_cfg.clusters}")
    gan = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    if s.model_cfg.clusters:
        s = _with_cluster_labels(s, gan.generator)
    evaluator = None
    if s.train_cfg.eval_every:
        from .evaluate import fid_evaluator  # here: the metrics (torchmetrics) take seconds to import

        evaluator = fid_evaluator(s.run.config["data"], eval_samples, extractor,
                                  lambda t: GANPipeline(t.ema.module, t.model.cfg, s.classes))
    task = GANTask(gan, s.task_cfg, s.runtime, seed=s.seed, sync_bn=s.train_cfg.sync_bn, evaluator=evaluator)
    Trainer(task, s.data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return GANPipeline(task.ema.module, s.model_cfg, s.classes, s.run.path)


# Unlabelled data gets a GAN conditioned on k-means clusters of its images: at equal CPU time on
# Fashion-MNIST without labels, FID fell with more clusters (10, 25, 50) on the validation split
# (benchmarks/gan_levers.py; docs/gan.md).
AUTO_CLUSTERS = 50
IMAGES_PER_CLUSTER = 100  # smaller datasets get fewer clusters, and none below 2 clusters' worth
# A cluster-conditioned generator samples its latents spread out, z ~ N(0, s^2 I): on Fashion-MNIST
# without labels this raised recall and lowered or kept FID under both judges against s = 1 on
# the validation split, where the plain unconditional GAN gained nothing from it
# (benchmarks/gan_levers.py; docs/gan.md).
CLUSTER_LATENT_SCALE = 1.15


CLUSTERS_NEED_WHOLE_IMAGES = "--clusters groups whole images: it does not combine with --random-crops"


def auto_clusters(n_images: int) -> int:
    """The default number of clusters for ``n_images`` unlabelled whole images."""
    k = min(AUTO_CLUSTERS, n_images // IMAGES_PER_CLUSTER)
    return k if k >= 2 else 0


def _with_cluster_labels(s, generator: torch.nn.Module):
    """The session with its images' k-means cluster ids as labels; G's ``label_prior`` set to
    the clusters' shares (the same on resume: the clustering is deterministic for a seed)."""
    if not isinstance(s.data, ImageData):
        raise PixelforgeError(CLUSTERS_NEED_WHOLE_IMAGES)
    labels = cluster_labels(s.data.images, s.model_cfg.clusters, seed=s.seed)
    generator.label_prior.copy_(torch.bincount(labels, minlength=s.model_cfg.clusters).float() / len(labels))
    return dataclasses.replace(s, data=dataclasses.replace(s.data, labels=labels, classes=[]))


class GANPipeline(LabelParser):
    """Sampling from a trained generator (the EMA weights unless told otherwise)."""

    def __init__(self, generator: torch.nn.Module, cfg: GANConfig, classes: Sequence[str], path: Path | None = None,
                 device: torch.device | None = None, cluster_power: float = 1.0, latent_scale: float | None = None):
        self.generator = generator.eval()
        # A cluster-conditioned GAN draws each sample's cluster with probability share ** power:
        # 1 follows the training images' shares, 0 draws every cluster equally often.
        self.cluster_power = cluster_power
        # Latents are drawn from N(0, latent_scale^2 I): below 1 the samples keep to the likelier
        # images (the truncation trick's psi around the mean latent 0), above 1 they spread out.
        # Default: CLUSTER_LATENT_SCALE for a cluster-conditioned generator, else 1.
        self.latent_scale = latent_scale if latent_scale is not None else (
            CLUSTER_LATENT_SCALE if cfg.clusters else 1.0)
        self.cfg = cfg
        self.classes = list(classes)
        self.path = path
        self.device = device or next(generator.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    @property
    def sampling(self) -> dict:
        """The settings samples are drawn with (``pixelforge eval`` records them)."""
        clusters = {"cluster_power": self.cluster_power} if self.cfg.clusters else {}
        return {"latent_scale": self.latent_scale, **clusters}

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

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

    def _latents(self, n: int, g: torch.Generator, latent_scale: float | None = None) -> torch.Tensor:
        scale = self.latent_scale if latent_scale is None else latent_scale
        if not scale > 0:
            raise PixelforgeError(f"latent_scale must be positive, not {scale}")
        return torch.randn(n, self.cfg.latent_dim, generator=g) * scale

    def sample(self, n: int = 64, seed: int | None = 0, labels=None, batch_size: int = 256,
               latent_scale: float | None = None) -> torch.Tensor:
        """``n`` images in [0, 1]; ``latent_scale`` overrides the pipeline's for this call."""
        if n < 1:
            raise PixelforgeError(f"number of samples must be at least 1, not {n}")
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        z = self._latents(n, g, latent_scale)
        if labels is None and self.cfg.clusters:  # a cluster-conditioned GAN: clusters by their share
            prior = self.generator.label_prior.float().cpu()
            weights = torch.where(prior > 0, prior.pow(self.cluster_power), torch.zeros_like(prior))
            clusters = torch.multinomial(weights, n, replacement=True, generator=g)
            return self.generate(z, clusters, batch_size)
        return self.generate(z, self.parse_labels(labels, n), batch_size)

    def interpolate(self, path: str | os.PathLike, rows: int = 8, frames: int = 48, seed: int = 0,
                    labels=None, fps: int = 12) -> Path:
        """A looping GIF walking each of ``rows`` images through random latent keyframes (slerp)."""
        if rows < 1 or frames < 2:
            raise PixelforgeError("interpolation needs at least 1 image and 2 frames")
        g = torch.Generator().manual_seed(seed)
        keys = 4
        zk = self._latents(keys * rows, g).view(keys, rows, -1)
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


def load_gan(run_dir: str | os.PathLike, device: str = "auto", ema: bool = True, best: bool = False,
             latent_scale: float | None = None) -> GANPipeline:
    """Rebuild a trained GAN's generator from its run directory (config.json + safetensors);
    ``best``: the checkpoint with the best validation FID seen by ``--eval-every``;
    ``latent_scale``: sample z from N(0, latent_scale^2 I) (default: see :class:`GANPipeline`)."""
    r, model_cfg, gan, runtime = open_model(run_dir, "gan", device)
    ckpt = best_checkpoint(r) if best else None
    load_weights_into(r, gan.generator, "generator_ema" if ema else "generator", ckpt)
    return GANPipeline(gan.generator.to(runtime.device), model_cfg, r.config["data"].get("classes", []), r.path,
                       latent_scale=latent_scale)


FAMILY = Family(
    "gan", load_gan, generates=True, interpolates="latent", exports=(GANPipeline,), description="DCGAN family",
    commands=(TrainCommand(
        "gan", "train a GAN (DCGAN family)", train_gan, (GANConfig, GANTrainConfig), evaluates=True,
        report=samples_report,
        options=(Option("conditional", "class-conditional G and projection D (default: when the data has classes)",
                        group="model"),
                 Option("spectral_norm", "same as --d-norm sn", group="model"),
                 Option("clusters", "data without labels: condition G and D on this many k-means clusters of the "
                                    f"images; 0 for none (default: {AUTO_CLUSTERS}, or one per {IMAGES_PER_CLUSTER} "
                                    "images for fewer images)", group="model"),
                 Option("random_crops", "folder data: train on random --size crops of the whole photos, many per "
                                        "photo and epoch, not one centre crop per file", group="data"))),))
