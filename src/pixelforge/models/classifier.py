"""CNN image classifier: convolution, pooling and a fully connected head.

Objective: minimise the cross-entropy between the predicted class distribution
softmax(f(x)) and the label y (with label smoothing eps: the target puts 1 - eps on y
and spreads eps over all classes, which keeps the logits calibrated and regularises).

Architecture: ``blocks`` stages of [3x3 conv, norm, ReLU] x 2 followed by 2x2 max
pooling (VGG-style; the stride-free convolutions see every pixel twice before pooling),
widths doubling per stage; global average pooling; dropout; a linear layer to the
classes. The pooled vector is the image's *feature*: the metrics use it as the
embedding for FID/KID/precision-recall, and Grad-CAM reads the last stage's maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelforgeError
from ..family import flag
from ..nn import GroupNorm
from ..nn.augment import parse_policy
from .registration import register_model


@dataclass
class ClassifierConfig:
    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    # channels of the first stage; each later stage doubles them
    width: int = flag(32, help="channels of the first stage", check="positive")
    blocks: int = flag(3, help="conv stages, each halving the resolution", check="positive")
    dropout: float = flag(0.2, help="dropout before the last layer")
    # bn (batch norm), gn (group norm: per sample, for tiny per-device batches) or none
    norm: str = flag("bn", help="batch norm (bn), group norm (gn) or none", choices=("bn", "gn", "none"))

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise PixelforgeError(f"classifiers take 1 or 3 channels, not {self.channels}")
        if self.num_classes < 2:
            raise PixelforgeError(f"a classifier needs at least 2 classes, not {self.num_classes}")
        if self.blocks < 1 or self.width < 1:
            raise PixelforgeError("blocks and width must be positive")
        if self.image_size < 2 ** self.blocks:
            raise PixelforgeError(f"{self.image_size} px is too small for {self.blocks} pooling stages")
        if self.norm not in NORMS:
            raise PixelforgeError(f"unknown norm {self.norm!r}; use one of {', '.join(NORMS)}")
        if not 0 <= self.dropout < 1:
            raise PixelforgeError(f"dropout must be in [0, 1), not {self.dropout}")

    @property
    def feature_dim(self) -> int:
        return self.width * 2 ** (self.blocks - 1)


NORMS = ("bn", "gn", "none")


TTA_MODES = ("none", "flip", "flip-shift")


def check_tta(mode: str) -> str:
    if mode not in TTA_MODES:
        raise PixelforgeError(f"unknown test-time augmentation {mode!r}; use one of {', '.join(TTA_MODES)}")
    return mode


def default_tta(augment: str) -> str:
    """A classifier trained on mirrored images too predicts with mirror-averaged logits ("flip")."""
    return "flip" if "flip" in parse_policy(augment) else "none"


def tta_logits(net: nn.Module, x: torch.Tensor, mode: str = "flip") -> torch.Tensor:
    """fp32 logits of ``x`` ([-1, 1] images), averaged over test-time views (test-time augmentation):
    ``none`` the image alone; ``flip`` the image and its mirror; ``flip-shift`` those two and each
    moved by one pixel left, right, up and down (10 views, as AlexNet's 10-crop testing), the
    shift padded with black (-1) like the training crops."""
    check_tta(mode)
    views = [x]
    if mode == "flip-shift":
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
        views += [padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    if mode != "none":
        views += [v.flip(3) for v in views]
    return torch.stack([net(v).float() for v in views]).mean(0)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(c)
    if kind == "gn":
        return GroupNorm(min(8, c), c)
    return nn.Identity()


def _stage(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    bias = norm == "none"
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class CNNClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.width * 2 ** i for i in range(cfg.blocks)]
        self.stages = nn.ModuleList(_stage(c_in, c_out, cfg.norm) for c_in, c_out in zip([cfg.channels, *widths], widths))
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(widths[-1], cfg.num_classes))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every stage (for visualisation and Grad-CAM)."""
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("cnn", family="classifier", config=ClassifierConfig,
                description="VGG-style CNN classifier (conv-BN-ReLU x2 + max-pool stages)")
def build_cnn(cfg: ClassifierConfig) -> CNNClassifier:
    return CNNClassifier(cfg)
