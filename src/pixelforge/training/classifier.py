"""The classifier training task: SGD with Nesterov momentum on label-smoothed cross-entropy,
random flips and small shifts (black-padded) on the fly, optionally mixup, a one-cycle learning rate over the run's budget
(steps or wall-clock, whichever ends first), validation accuracy after every epoch (one view),
and at the end the accuracy on the reported split (test; a folder's validation images),
averaged over the image and its mirror when flips are in the augmentation, with a confusion
matrix, beside the validation accuracy of every test-time view set (to choose them by).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import dryrun
from ..data import ImageData
from ..errors import PixelforgeError
from ..family import flag
from ..models.classifier import TTA_MODES, CNNClassifier, default_tta, tta_logits
from ..nn import diff_augment, no_sync_unless
from ..nn.augment import BLACK, mixup, parse_policy
from ..images import plot_confusion
from ..runs import Run, atomic_write_json
from ..runtime import Runtime, make_optimizer
from .task import SingleNetTask
from .lr_schedules import one_cycle


@dataclass
class ClassifierTrainConfig:
    # peak of the one-cycle schedule
    lr: float = flag(0.05, help="peak learning rate of the one-cycle schedule", check="positive")
    momentum: float = 0.9
    weight_decay: float = flag(5e-4, help="SGD weight decay")
    label_smoothing: float = flag(0.1, help="label smoothing of the cross-entropy")
    augment: str = flag("flip,crop", help="comma list of flip,crop,translation,cutout,color; '' for none (flip: "
                                          "mirror, crop: shift by up to 1/16 of the size)")
    mixup: float = flag(0.0, help="mixup's Beta(a, a) parameter a: each batch is blended with a shuffled copy of "
                                  "itself, labels too; 0 for none (0.2 is usual)")
    warmup: float = 0.15  # fraction of the budget spent ramping the learning rate up

    def __post_init__(self):
        if not 0 < self.lr < 10:
            raise PixelforgeError(f"lr must be in (0, 10), not {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise PixelforgeError(f"label smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0 <= self.warmup < 1:
            raise PixelforgeError(f"warmup must be in [0, 1), not {self.warmup}")
        if not 0 <= self.mixup <= 10:
            raise PixelforgeError(f"mixup must be in [0, 10], not {self.mixup}")
        parse_policy(self.augment)


class ClassifierTask(SingleNetTask):
    name = "classifier"
    loss_keys = ("loss", "val_loss", "val_acc")

    def __init__(self, model: CNNClassifier, cfg: ClassifierTrainConfig, runtime: Runtime,
                 eval_data: ImageData | None = None, sync_bn: bool = False, val_data: ImageData | None = None):
        """``eval_data``: the split the final accuracy is reported on (test); ``val_data``: the
        validation split, for the per-epoch curve and the comparison of test-time views."""
        self.model, self.cfg, self.rt = model, cfg, runtime
        self.net = runtime.module(model)
        self.net_train = runtime.wrap(self.net, sync_bn)  # DDP under torchrun
        decay = [p for n, p in self.net.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in self.net.named_parameters() if p.ndim <= 1]
        self.opt = make_optimizer(torch.optim.SGD, [{"params": decay, "weight_decay": cfg.weight_decay},
                                    {"params": no_decay, "weight_decay": 0.0}],
                                   lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        self.augment = parse_policy(cfg.augment)
        self.eval_data = eval_data
        self.val_data = val_data
        self.progress = 0.0

    # -- Task protocol ----------------------------------------------------------------
    def step(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        if labels is None:
            raise PixelforgeError("a classifier needs a labelled dataset (for folders: one subfolder per class)")
        lr = self.cfg.lr * one_cycle(self.progress, self.cfg.warmup)
        for g in self.opt.param_groups:
            g["lr"] = lr
        if self.augment:
            images = self.augment_batch(images)
        partners, lam = labels, 1.0
        if self.cfg.mixup:
            images, perm, lam = mixup(images, self.cfg.mixup)
            partners = labels[perm]
        self.net_train.train()
        k = self.grad_accum
        self.opt.zero_grad(set_to_none=True)
        loss_sum, correct = 0.0, 0
        for i, (x, y, y2) in enumerate(zip(images.chunk(k), labels.chunk(k), partners.chunk(k))):
            with no_sync_unless(self.net_train, i == k - 1), self.rt.autocast():
                logits = self.net_train(x)
            ce = lambda target: F.cross_entropy(logits.float(), target, label_smoothing=self.cfg.label_smoothing)  # noqa: E731
            loss = (lam * ce(y) + (1 - lam) * ce(y2) if lam < 1 else ce(y)) * (len(y) / len(labels))
            loss.backward()
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
        self.opt.step()
        return {"loss": loss_sum, "train_acc": correct / len(labels), "lr": lr}

    def augment_batch(self, images: torch.Tensor) -> torch.Tensor:
        """The training augmentation of a [-1, 1] batch: what translation and crop pad with, and
        what cutout removes, is black (-1) like the images' background, not the mid-grey (0) that
        no test image shows."""
        return diff_augment(images, self.augment, background=BLACK)

    @property
    def tta(self) -> str:
        """The recipe's test-time augmentation: mirror-averaged ("flip") when trained with flips."""
        return default_tta(self.cfg.augment)

    @torch.no_grad()
    def predict(self, images_uint8: torch.Tensor, batch_size: int = 512, tta: str | None = None) -> torch.Tensor:
        """Logits for uint8 images (N, C, H, W), in eval mode, averaged over the test-time views
        ``tta`` (see :func:`tta_logits`; default: the recipe's, :attr:`tta`)."""
        self.net.eval()
        out = []
        for i in range(0, len(images_uint8), batch_size):
            x = self.rt.tensor(images_uint8[i:i + batch_size].float().div(127.5).sub(1))
            with self.rt.autocast():
                out.append(tta_logits(self.net, x, tta or self.tta).cpu())
        return torch.cat(out)

    def evaluate(self, data: ImageData, tta: str | None = None) -> dict:
        """Loss, accuracy, predictions and their labels on ``data`` (in the fast mode its first
        ``dryrun.LIMITS["scored"]`` images) with the test-time views ``tta``."""
        n = dryrun.cap(len(data), "scored")
        logits, labels = self.predict(data.images[:n], tta=tta), data.labels[:n]
        pred = logits.argmax(1)
        return {"loss": F.cross_entropy(logits, labels).item(),
                "acc": (pred == labels).float().mean().item(), "pred": pred, "labels": labels}

    def on_epoch_end(self, run: Run, epoch: int, step: int) -> None:
        if self.val_data is None:
            return
        ev = self.evaluate(self.val_data, tta="none")  # single view, to keep the per-epoch curve cheap
        run.log_metrics({"step": step, "epoch": epoch, "val_loss": round(ev["loss"], 6),
                         "val_acc": round(ev["acc"], 6)})

    def on_train_end(self, run: Run, step: int) -> None:
        # The validation split first: the reported split's keys, confusion matrix and "split" come last.
        reported = self.eval_data if self.eval_data is not self.val_data else None  # a folder's: the same images
        sets = [d for d in (self.val_data, reported) if d is not None]
        if not sets:
            return
        result: dict = {"step": step, "tta": self.tta}
        for data in sets:
            split = data.split or "test"
            ev = self.evaluate(data)
            result.update({"split": split, f"{split}_images": len(ev["pred"]), f"{split}_accuracy": ev["acc"],
                           f"{split}_loss": ev["loss"]})
            if data is self.val_data:
                # Every view set on validation, to choose --tta by; the reported split is scored once,
                # with the recipe's views (self.tta).
                result["val_accuracy_by_tta"] = {
                    mode: ev["acc"] if mode == self.tta else self.evaluate(data, tta=mode)["acc"]
                    for mode in (TTA_MODES if self.tta == "flip" else ("none",))}
        k = self.model.cfg.num_classes
        labels = ev["labels"]
        confusion = torch.zeros(k, k, dtype=torch.long)
        confusion.index_put_((labels, ev["pred"]), torch.ones_like(labels), accumulate=True)
        per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
        names = data.classes if len(data.classes) == k else [str(i) for i in range(k)]
        atomic_write_json(run.path / "evaluation.json", {
            **result, "per_class_accuracy": dict(zip(names, per_class)), "confusion_matrix": confusion.tolist()})
        plot_confusion(confusion, names, run.path / "confusion.png", title=f"{split} accuracy {ev['acc']:.2%}")
