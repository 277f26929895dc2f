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
from torch import nn

from ..errors import PixelforgeError
from ..nn import GroupNorm
from ..nn.augment import parse_policy
from ..registry import register_model


@dataclass
class ClassifierConfig:
    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    width: int = 32  # channels of the first stage; each later stage doubles them
    blocks: int = 3
    dropout: float = 0.2
    norm: str = "bn"  # bn (batch norm), gn (group norm: per sample, for tiny per-device batches) or none

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


def trained_with_flips(augment: str) -> bool:
    """A classifier trained on mirrored images too predicts with :func:`mirror_averaged_logits`."""
    return "flip" in parse_policy(augment)


def mirror_averaged_logits(net: nn.Module, x: torch.Tensor, average: bool = True) -> torch.Tensor:
    """fp32 logits of ``x``; with ``average``, the mean over the image and its mirror (test-time augmentation)."""
    logits = net(x).float()
    return (logits + net(x.flip(3)).float()) / 2 if average else logits


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
