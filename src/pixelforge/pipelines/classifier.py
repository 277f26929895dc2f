"""Classifiers from Python: ``train_classifier``, and :class:`ClassifierPipeline` to
predict, embed and explain (filters, feature maps, Grad-CAM) images.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..data import ImageData, load_image
from ..errors import PixelforgeError
from ..family import Family, TrainCommand
from ..images import pyplot, save_figure, save_grid
from ..models.classifier import ClassifierConfig, CNNClassifier, check_tta, default_tta, tta_logits
from ..registry import create_model, get_entry
from ..runs import Run
from ..runtime import Runtime
from ..training import TrainConfig, Trainer
from ..training.classifier import ClassifierTask, ClassifierTrainConfig
from ..zoo.catalog import load_network
from .common import evaluation_data, fields_of, load_weights_into, open_model, start_session


def train_classifier(data: str | None = "fashion-mnist", run: str | os.PathLike | None = None, *,
                     resume: bool = False, overwrite: bool = False, size: int | None = None,
                     channels: int | None = None, limit: int | None = None, model: str = "cnn",
                     device: str = "auto", precision: str = "auto", seed: int = 0, progress: bool = True,
                     **options: Any) -> "ClassifierPipeline":
    """Train (or continue) a classifier: validation accuracy after every epoch, the reported
    accuracy on the test split (a folder's validation images) at the end."""

    def model_defaults(dataset):
        if dataset.num_classes < 2:
            raise PixelforgeError(f"{data} has no class labels; a folder needs one subfolder per class")
        return {"image_size": dataset.size, "channels": dataset.channels, "num_classes": dataset.num_classes}

    s = start_session("classifier", ClassifierTrainConfig, data, run, model=model, options=options, resume=resume,
                      task=ClassifierTask,
                      overwrite=overwrite, size=size, channels=channels, limit=limit, device=device,
                      precision=precision, seed=seed, model_defaults=model_defaults)
    val_data, eval_data = evaluation_data(s.run.config["data"])
    net = create_model(s.model_name, **dataclasses.asdict(s.model_cfg))
    task = ClassifierTask(net, s.task_cfg, s.runtime, eval_data=eval_data, val_data=val_data,
                          sync_bn=s.train_cfg.sync_bn)
    Trainer(task, s.data, s.run, s.train_cfg, s.runtime, seed=s.seed, progress=progress).fit(resume=resume)
    return ClassifierPipeline(task.net.float().eval(), s.model_cfg, s.classes, s.run.path, tta=task.tta)


def fit_classifier(train: ImageData, test: ImageData | None, run: str | os.PathLike, *, model: str = "cnn",
                   seed: int = 0, device: str = "auto", precision: str = "auto", progress: bool = False,
                   init: "ClassifierPipeline | None" = None,
                   **options: Any) -> tuple["ClassifierPipeline", float | None]:
    """Train on in-memory images (e.g. a real subset plus generated samples) into a fresh run;
    returns the pipeline and its accuracy on ``test``. ``init``: a classifier of the same
    architecture, classes and image shape whose weights training starts from (fine-tuning)."""
    model_cls = get_entry(model).config_cls
    train_cfg = TrainConfig(**fields_of(options, TrainConfig))
    task_cfg = ClassifierTrainConfig(**fields_of(options, ClassifierTrainConfig))
    model_cfg = model_cls(**{"image_size": train.size, "channels": train.channels,
                             "num_classes": train.num_classes, **fields_of(options, model_cls)})
    if init is not None and init.cfg != model_cfg:  # checked before the run folder is made
        raise PixelforgeError(f"{init.name} has another architecture, image shape or classes than the "
                              "classifier to train; it cannot be its starting point")
    runtime = Runtime.create(device, precision, seed=seed)
    r = Run.create(run, {"family": "classifier", "model": {"name": model, "config": dataclasses.asdict(model_cfg)},
                         "task": dataclasses.asdict(task_cfg), "train": dataclasses.asdict(train_cfg),
                         "data": {"spec": f"memory:{train.name}", "size": train.size, "channels": train.channels,
                                  "classes": train.classes, "limit": None}, "seed": seed,
                         **({"init": str(init.path or init.name)} if init is not None else {})}, overwrite=True)
    net = create_model(model, **dataclasses.asdict(model_cfg))
    if init is not None:
        net.load_state_dict(init.net.state_dict())
    # No per-epoch evaluation: on a few hundred images an "epoch" is a handful of steps.
    task = ClassifierTask(net, task_cfg, runtime)
    Trainer(task, train, r, train_cfg, runtime, seed=seed, progress=progress).fit()
    pipe = ClassifierPipeline(task.net.float().eval(), model_cfg, train.classes, r.path, tta=task.tta)
    return pipe, (pipe.accuracy(test.images, test.labels) if test is not None else None)


class ClassifierPipeline:
    """A trained classifier: ``predict`` (probabilities), ``features`` (embeddings), ``explain``."""

    def __init__(self, net: CNNClassifier, cfg: ClassifierConfig, classes: Sequence[str], path: Path | None = None,
                 name: str | None = None, tta: str = "none"):
        self.net = net.eval()
        # Test-time views the logits average (models.classifier.tta_logits): "flip" for a
        # classifier trained on mirrored images too.
        self.tta = check_tta(tta)
        # As a feature extractor for the metrics: a name recorded beside every score.
        self.name = name or (f"run:{path}" if path else "classifier")
        self.feature_dim = cfg.feature_dim
        self.cfg = cfg
        self.classes = list(classes) if len(classes) == cfg.num_classes else [str(i) for i in range(cfg.num_classes)]
        self.path = path
        self.device = next(net.parameters()).device

    # -- inputs -------------------------------------------------------------------------
    def load_images(self, paths: Sequence[str | os.PathLike]) -> torch.Tensor:
        """Image files -> uint8 (N, C, H, W) at the model's size and channels."""
        if not paths:
            raise PixelforgeError("give at least one image")
        return torch.stack([load_image(p, size=self.cfg.image_size, channels=self.cfg.channels) for p in paths])

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (0..255) or float (0..1) images of any size/channels -> the model's [-1, 1] input."""
        if images.dim() != 4:
            raise PixelforgeError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] != self.cfg.channels:
            if x.shape[1] == 3 and self.cfg.channels == 1:
                x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
            elif x.shape[1] == 1 and self.cfg.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            else:
                raise PixelforgeError(f"cannot convert {x.shape[1]}-channel images for a "
                                      f"{self.cfg.channels}-channel classifier")
        if x.shape[-1] != self.cfg.image_size or x.shape[-2] != self.cfg.image_size:
            x = F.interpolate(x, size=(self.cfg.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        return (x * 2 - 1).to(self.device)

    # -- outputs ------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        return torch.cat([tta_logits(self.net, self._prepare(images[i:i + batch_size]), self.tta).cpu()
                          for i in range(0, len(images), batch_size)])

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, num_classes)."""
        return self.logits(images).softmax(1)

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """The pooled penultimate activations (N, feature_dim): the embedding the metrics use."""
        return torch.cat([self.net.features(self._prepare(images[i:i + batch_size])).float().cpu()
                          for i in range(0, len(images), batch_size)])

    def topk(self, images: torch.Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        probs = self.predict(images)
        k = min(k, probs.shape[1])
        p, idx = probs.topk(k, dim=1)
        return [[(self.classes[j], float(q)) for q, j in zip(pr.tolist(), ix.tolist())] for pr, ix in zip(p, idx)]

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return (self.logits(images).argmax(1) == labels).float().mean().item()

    # -- seeing inside --------------------------------------------------------------------
    def grad_cam(self, image: torch.Tensor, target: int | None = None, stage: int = -1) -> tuple[torch.Tensor, int]:
        """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A^k) where alpha_k is the spatial
        mean of d(logit_target)/dA^k over the feature maps A of ``stage``; upsampled to the
        input, scaled to [0, 1]. Returns (heat map (H, W), target class)."""
        x = self._prepare(image.unsqueeze(0) if image.dim() == 3 else image)[:1]
        maps = []
        h = x
        with torch.enable_grad():
            for st in self.net.stages:
                h = st(h)
                maps.append(h)
            maps[stage].retain_grad()
            logits = self.net.head(h.mean(dim=(2, 3)))
            target = int(logits.argmax(1)) if target is None else target
            logits[0, target].backward()
        a = maps[stage]
        weights = a.grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * a).sum(1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        cam = cam / cam.max() if cam.max() > 0 else cam
        self.net.zero_grad(set_to_none=True)
        return cam.cpu(), target

    def explain(self, image: torch.Tensor, out_dir: str | os.PathLike, top_maps: int = 16) -> dict[str, Path]:
        """Write first-layer filters, per-stage feature maps and a Grad-CAM overlay as PNGs."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        w = self.net.stages[0][0].weight.detach().float().cpu()  # (C_out, C_in, 3, 3)
        w = (w - w.amin(dim=(1, 2, 3), keepdim=True)) / (w.amax(dim=(1, 2, 3), keepdim=True)
                                                        - w.amin(dim=(1, 2, 3), keepdim=True) + 1e-8)
        written["filters"] = save_grid(w if w.shape[1] in (1, 3) else w[:, :1], out / "filters.png",
                                       nrow=8, scale=8)
        x = self._prepare(image.unsqueeze(0) if image.dim() == 3 else image)[:1]
        with torch.no_grad():
            maps = self.net.feature_maps(x)
        for i, m in enumerate(maps, 1):
            m = m[0].float().cpu()
            strongest = m.mean(dim=(1, 2)).argsort(descending=True)[:top_maps]
            sel = m[strongest].unsqueeze(1)
            sel = (sel - sel.amin(dim=(2, 3), keepdim=True)) / (sel.amax(dim=(2, 3), keepdim=True)
                                                               - sel.amin(dim=(2, 3), keepdim=True) + 1e-8)
            scale = max(1, 96 // sel.shape[-1])
            written[f"stage{i}"] = save_grid(sel, out / f"feature_maps_stage{i}.png", nrow=8, scale=scale)
        cam, target = self.grad_cam(image)
        written["gradcam"] = self._cam_figure(x[0], cam, target, out / "gradcam.png")
        return written

    def _cam_figure(self, x: torch.Tensor, cam: torch.Tensor, target: int, path: Path) -> Path:
        plt = pyplot()
        img = ((x.float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
        img = img[:, :, 0] if img.shape[2] == 1 else img
        prob = self.predict(((x.unsqueeze(0).cpu() + 1) / 2).clamp(0, 1))[0, target].item()
        fig, axes = plt.subplots(1, 2, figsize=(6, 3.2), dpi=100)
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[0].set_title("input")
        axes[1].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[1].imshow(cam.numpy(), cmap="jet", alpha=0.45)
        axes[1].set_title(f"Grad-CAM: {self.classes[target]} ({prob:.0%})")
        for a in axes:
            a.axis("off")
        return save_figure(fig, path)


def load_shipped_classifier(name: str, device: str = "auto") -> ClassifierPipeline:
    """A shipped classifier (the default judges of generated images, see ``pixelforge/zoo``)."""
    net, info = load_network(name, "classifier")
    rt = Runtime.create(device, "fp32")
    return ClassifierPipeline(net.to(rt.device), net.cfg, info["classes"], None, name=name)


def load_classifier(run_dir: str | os.PathLike, device: str = "auto", tta: str | None = None) -> ClassifierPipeline:
    """A trained classifier run; ``tta`` overrides the test-time views its recipe implies."""
    r, cfg, net, runtime = open_model(run_dir, "classifier", device)
    load_weights_into(r, net, "classifier")
    tta = tta or default_tta(r.config.get("task", {}).get("augment", ""))
    return ClassifierPipeline(net.to(runtime.device), cfg, r.config["data"].get("classes", []), r.path, tta=tta)


def training_report(pipe: ClassifierPipeline) -> list[str]:
    """What ``pixelforge train classifier`` prints: the accuracy on the reported split (test, or a
    folder's validation images), when there was one."""
    path = pipe.path / "evaluation.json"
    if not path.is_file():
        return []
    ev = json.loads(path.read_text())
    split = ev.get("split", "test")
    return [f"{split} accuracy: {ev[f'{split}_accuracy']:.2%} on {ev[f'{split}_images']} images "
            f"(confusion matrix: {pipe.path / 'confusion.png'})"]


FAMILY = Family(
    "classifier", load_classifier, load_shipped=load_shipped_classifier, exports=(ClassifierPipeline,), description="CNN classifiers",
    commands=(TrainCommand("classifier", "train a CNN classifier", train_classifier,
                           (ClassifierConfig, ClassifierTrainConfig), report=training_report),))
