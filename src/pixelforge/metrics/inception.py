"""The FID Inception-v3 network and its weights.

FID, KID and the Inception Score are conventionally reported with one specific
network: the TensorFlow Inception-v3 graph of 2015-12-05 that the original FID
code used, ported to PyTorch by pytorch-fid as ``pt_inception-2015-12-05-6726825d.pth``.
It differs from torchvision's Inception-v3 in its weights, a 1008-way classifier
and its pooling (TensorFlow's average pooling ignores padding; the last block
max-pools). :class:`InceptionV3FID` rebuilds that architecture with module
names matching the checkpoint's keys; :func:`load_inception` finds, downloads
(once, verified) and loads the weights.

Weights are looked for in this order:

1. the ``path`` argument,
2. ``$PIXELFORGE_INCEPTION_WEIGHTS``,
3. ``<cache>/weights/pt_inception-2015-12-05-6726825d.pth`` (see
   :func:`pixelforge.data.registry.cache_dir`),
4. a download into that cache file from :data:`INCEPTION_URL`, or from
   ``$PIXELFORGE_WEIGHTS_MIRROR/<file name>`` when that variable is set.

The file is read with ``torch.load(..., weights_only=True)``, so a checkpoint
that would run code when unpickled is refused rather than executed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import PixelforgeError
from ..runs import read_weights_file
from ..weights import ExternalWeights

INCEPTION_FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_BASE_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
INCEPTION_URL = INCEPTION_BASE_URL + INCEPTION_FILE_NAME
# The file name carries the first 8 hex digits of the file's sha256 (torch hub's
# convention). The full digest is the one several public projects record for
# this file (95,628,359 bytes); it agrees with those 8 digits.
INCEPTION_HASH_SPEC = "sha256:6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_ENV = "PIXELFORGE_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS = ExternalWeights("FID Inception", INCEPTION_FILE_NAME, INCEPTION_URL, INCEPTION_HASH_SPEC,
                                    WEIGHTS_ENV)

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (TensorFlow's eps), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: Tensor) -> Tensor:
    # TensorFlow's average pooling leaves the zero padding out of the average.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ], dim=1)


class _ReductionB(nn.Module):
    """35x35 -> 17x17 grid reduction."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = conv(branch7x7dbl)
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_avg_pool(x))], dim=1)


class _ReductionD(nn.Module):
    """17x17 -> 8x8 grid reduction."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7x3 = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = conv(branch7x7x3)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            branch7x7x3,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs.

    ``max_pool`` reproduces the FID graph's last block, which max-pools in its
    pooled branch where the Inception paper average-pools.
    """

    def __init__(self, in_channels: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3),
            self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl),
            self.branch_pool(pooled),
        ], dim=1)


class InceptionV3FID(nn.Module):
    """The FID Inception-v3: 2048-d pool features and 1008-way logits (a :class:`FeatureExtractor`).

    Takes float images in [0, 1] of shape (N, C, H, W) with C in {1, 3} and any
    size: grayscale is repeated to RGB, images are resized to 299x299
    (bilinear) and scaled to [-1, 1]. Built with random weights (always in eval
    mode, without gradients); use :func:`load_inception` for the real ones.
    Attribute names follow the checkpoint's keys.
    """

    name = "inception-v3-fid"
    feature_dim = FEATURE_DIM
    num_classes = NUM_CLASSES

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _MixedA(192, pool_features=32)
        self.Mixed_5c = _MixedA(256, pool_features=64)
        self.Mixed_5d = _MixedA(288, pool_features=64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _MixedC(768, channels_7x7=128)
        self.Mixed_6c = _MixedC(768, channels_7x7=160)
        self.Mixed_6d = _MixedC(768, channels_7x7=160)
        self.Mixed_6e = _MixedC(768, channels_7x7=192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _MixedE(1280)
        self.Mixed_7c = _MixedE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.eval().requires_grad_(False)

    def _prepare(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise PixelforgeError(f"{self.name} needs (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
        x = images.to(self.fc.weight.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def features(self, images: Tensor) -> Tensor:
        """(N, 2048) pool features of images in [0, 1]."""
        x = self._prepare(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Pool features and the 1008 class logits computed from them, in one pass."""
        features = self.features(images)
        return features, self.fc(features)

    def logits(self, images: Tensor) -> Tensor:
        """(N, 1008) class logits of images in [0, 1]."""
        return self.features_and_logits(images)[1]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.features_and_logits(images)


def _check_fits(model: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """Raise a one-line error unless ``state`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}"
                  for key, value in expected.items() if key in state and state[key].shape != value.shape]
    problems = [f"{len(found)} {kind} (e.g. {found[0]})" for kind, found in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)) if found]
    if problems:
        raise PixelforgeError(f"{path} is not an FID Inception-v3 state dict: {'; '.join(problems)}")


def load_inception(path: str | os.PathLike | None = None, download: bool = True, *,
                   hash_spec: str = INCEPTION_HASH_SPEC) -> InceptionV3FID:
    """The FID Inception-v3 with its standard weights, on the CPU in eval mode.

    See the module docstring for where the weights are looked for. A download
    is verified against ``hash_spec`` ("sha256:<hex>") before it is cached.
    Raises :class:`~pixelforge.errors.PixelforgeError` when no weights can be
    found or fetched, or when the file is not a plain state dict of the
    expected architecture.
    """
    weights = INCEPTION_WEIGHTS.locate(path, download, hash_spec)
    state = read_weights_file(weights, "Inception")
    model = InceptionV3FID()
    _check_fits(model, state, weights)
    model.load_state_dict(state)
    return model
