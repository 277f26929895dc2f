"""The Classification Accuracy Score, and the helpers of the augmentation study
(:mod:`pixelforge.apps.scarce_data`).

**CAS** (Ravuri & Vinyals 2019) asks whether a class-conditional generator learnt the classes:
train a classifier *only* on generated images, test it on the real test set, and put the
accuracy beside the same classifier trained on as many real images for the same number of steps.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .. import dryrun
from ..data import ImageData, load_dataset
from ..errors import PixelforgeError
from ..pipelines.classifier import fit_classifier


def conditional_pipe(gan_run):
    """The sampling pipeline of a class-conditional GAN run; any other run is refused."""
    from ..api import load
    from ..families import run_family

    family = run_family(gan_run)
    if family.name != "gan":
        raise PixelforgeError(f"{gan_run} is a {family.name} run; CAS and the augmentation study need a "
                              "class-conditional GAN run (train gan --conditional)")
    pipe = load(gan_run)
    if not getattr(pipe, "conditional", False):
        raise PixelforgeError(f"{gan_run} is not a class-conditional GAN (train it with --conditional)")
    return pipe


def generated_dataset(pipe, per_class: int, seed: int = 0) -> ImageData:
    """``per_class`` samples of every class as a labelled uint8 dataset, from a class-conditional
    GAN (one latent per image) or diffusion pipeline (its own sampler settings)."""
    k = pipe.cfg.num_classes
    labels = torch.arange(k).repeat_interleave(dryrun.cap(per_class, "per_class"))
    if hasattr(pipe, "generate"):
        z = torch.randn(len(labels), pipe.cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
        images, family = pipe.generate(z, labels), "gan"
    else:
        images, family = pipe.sample(len(labels), seed=seed, labels=labels, batch_size=256), "diffusion"
    images = (images * 255).round().to(torch.uint8)
    return ImageData(images, labels, list(pipe.classes), "generated", f"{family}:{pipe.path}")


def real_subset(data: ImageData, per_class: int, seed: int) -> ImageData:
    """``per_class`` random images of every class (fewer if a class has fewer)."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in range(data.num_classes):
        members = (data.labels == c).nonzero().flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    idx = torch.cat(idx)
    return ImageData(data.images[idx], data.labels[idx], data.classes, f"{data.name}-{per_class}pc", data.source)


def check_per_class_budget(data: ImageData, per_class: int) -> None:
    """Refuse a budget of ``per_class`` real images per class that the smallest class of ``data`` cannot
    fill (:func:`real_subset` would quietly take fewer). The fast mode, whose datasets are cut to a
    few hundred images, takes what there is instead."""
    counts = torch.bincount(data.labels, minlength=data.num_classes)
    smallest = int(counts.argmin())
    available = int(counts[smallest])
    if per_class > available and not dryrun.active():
        raise PixelforgeError(f"--per-class {per_class} is more than the {available} training images of "
                              f"class {data.classes[smallest]!r} (the smallest class of {data.name}); "
                              f"use at most {available}")


def concat(a: ImageData, b: ImageData) -> ImageData:
    return ImageData(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]), a.classes,
                     f"{a.name}+{b.name}", f"{a.source}+{b.source}")


def _real_splits(gan_cfg: dict) -> tuple[ImageData, ImageData]:
    d = gan_cfg["data"]
    base = d["spec"]
    return (load_dataset(base, size=d["size"], channels=d["channels"]),
            load_dataset(base, size=d["size"], channels=d["channels"], split="test"))


def classification_accuracy_score(gan_run: str | os.PathLike, per_class: int = 1000, steps: int = 600,
                                  batch_size: int = 64, seed: int = 0, progress: bool = False) -> dict:
    from ..runs import Run

    pipe = conditional_pipe(gan_run)
    train, test = _real_splits(Run.open(gan_run).config)
    check_per_class_budget(train, per_class)
    fake = generated_dataset(pipe, per_class, seed)
    real = real_subset(train, per_class, seed)
    opts = dict(max_steps=steps, batch_size=batch_size, seed=seed, progress=progress)
    with tempfile.TemporaryDirectory() as tmp:
        _, cas = fit_classifier(fake, test, Path(tmp) / "fake", **opts)
        _, real_acc = fit_classifier(real, test, Path(tmp) / "real", **opts)
    return {"cas": cas, "real_accuracy": real_acc, "per_class": per_class, "steps": steps,
            "train_images": len(fake), "test_images": len(test)}
