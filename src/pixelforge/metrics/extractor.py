"""Feature extractors and batched feature extraction.

Sample-based metrics (FID, KID, Inception Score, precision/recall) do not look
at pixels: they compare what a fixed "judge" network sees in two image sets.
:class:`FeatureExtractor` is what such a judge must offer, and :func:`extract`
runs one over a whole image set in batches, without gradients.

Images reach an extractor as float tensors in [0, 1] of shape (N, C, H, W) with
C in {1, 3}; :func:`as_unit_float` converts and checks user input on the way
(uint8 0..255 or float 0..1, detected by dtype) and refuses anything else with a
one-line :class:`~pixelforge.errors.PixelforgeError`. Float images are quantised to
8 bits on the way (``round(x * 255) / 255``), so generated samples are judged as the
real images are, and as they would be once saved: on the same 256 levels, never with
a precision no real image has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..errors import PixelforgeError

# Float images this far outside [0, 1] are a convention mix-up (e.g. [-1, 1] or
# 0..255 floats), not rounding noise.
RANGE_TOLERANCE = 1e-3


@runtime_checkable
class FeatureExtractor(Protocol):
    """A network that judges images.

    Input: float images in [0, 1], shape (N, C, H, W), C in {1, 3} and any H = W;
    the extractor converts channels and size itself. An extractor may also offer
    ``features_and_logits(images) -> (features, logits)``; :func:`extract` then
    runs the network once per batch instead of twice.
    """

    name: str
    """Identifies the network and its weights, e.g. "inception-v3-fid"; recorded in results."""
    feature_dim: int

    def features(self, images: Tensor) -> Tensor:
        """(N, feature_dim) float32 embeddings."""
        ...

    def logits(self, images: Tensor) -> Tensor:
        """(N, num_classes) float32 class logits (for the Inception Score)."""
        ...


def quantize_8bit(images: Tensor) -> Tensor:
    """Float images in [0, 1] on the 8-bit grid: ``round(x * 255) / 255`` (what saving them as a PNG keeps)."""
    return images.clamp(0, 1).mul(255).round().div(255)


def as_unit_float(images: Tensor | np.ndarray) -> Tensor:
    """Check an (N, C, H, W) batch and return it as float32 in [0, 1] on the 8-bit grid.

    uint8 images are divided by 255; float images must already lie in [0, 1] and are
    quantised like them (:func:`quantize_8bit`).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, Tensor):
        raise PixelforgeError(f"expected a tensor of images, got {type(images).__name__}")
    shape = tuple(images.shape)
    if images.dim() != 4:
        hint = "; add a batch dimension with images[None]" if images.dim() == 3 else ""
        raise PixelforgeError(f"images must have shape (N, C, H, W), got {shape}{hint}")
    if shape[1] not in (1, 3):
        hint = "; channels-last? use images.permute(0, 3, 1, 2)" if shape[3] in (1, 3) else ""
        raise PixelforgeError(f"images must have 1 or 3 channels, got shape {shape}{hint}")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise PixelforgeError(f"images must be uint8 (0..255) or float (0..1), got {images.dtype}")
    images = images.float()
    if images.numel():
        if not torch.isfinite(images).all():
            raise PixelforgeError("images contain NaN or infinite values")
        low, high = images.min().item(), images.max().item()
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise PixelforgeError(
                f"float images must lie in [0, 1], got values in [{low:.3g}, {high:.3g}] "
                "(from [-1, 1] use (x + 1) / 2; from 0..255 use x / 255)")
    return quantize_8bit(images)


def _batches(images, batch_size: int) -> Iterator[Tensor]:
    """Split a tensor, or every tensor of an iterable, into batches of at most ``batch_size``."""
    if isinstance(images, (Tensor, np.ndarray)):
        images = [images]
    elif not isinstance(images, Iterable):
        raise PixelforgeError(f"expected images as a tensor or an iterable of batches, got {type(images).__name__}")
    for batch in images:
        if isinstance(batch, (tuple, list)) and batch:  # (images, labels) from a DataLoader
            batch = batch[0]
        if not isinstance(batch, (Tensor, np.ndarray)):
            raise PixelforgeError(f"expected batches of image tensors, got {type(batch).__name__}")
        for start in range(0, len(batch), batch_size):
            yield batch[start:start + batch_size]


def _check_output(extractor, output: Tensor, n: int, what: str) -> Tensor:
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != n:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise PixelforgeError(f"extractor {extractor.name!r} returned {what} of shape {shape}, expected ({n}, D)")
    return output.detach().float().cpu()


def extract(extractor: FeatureExtractor, images, batch_size: int = 256, progress: bool = False, *,
            with_logits: bool = True) -> tuple[Tensor, Tensor | None]:
    """Run ``extractor`` over an image set; return ``(features, logits)`` as float32 CPU tensors.

    ``images`` is a tensor (uint8 0..255 or float 0..1, told apart by dtype; floats are
    quantised to 8 bits) of shape (N, C, H, W), or an iterable of such batches, e.g. a DataLoader
    (``(images, labels)`` pairs are accepted; the labels are ignored). Batches
    of at most ``batch_size`` go through the network under ``torch.no_grad()``.
    ``with_logits=False`` skips the logits and returns None in their place.
    """
    if batch_size < 1:
        raise PixelforgeError(f"batch_size must be at least 1, got {batch_size}")
    combined = getattr(extractor, "features_and_logits", None) if with_logits else None
    total = -(-len(images) // batch_size) if isinstance(images, (Tensor, np.ndarray)) else None
    features, logits = [], []
    with torch.no_grad():
        for batch in tqdm(_batches(images, batch_size), total=total, desc=f"{extractor.name} features",
                          unit="batch", disable=not progress):
            batch = as_unit_float(batch)
            if combined is not None:
                batch_features, batch_logits = combined(batch)
            else:
                batch_features = extractor.features(batch)
                batch_logits = extractor.logits(batch) if with_logits else None
            features.append(_check_output(extractor, batch_features, len(batch), "features"))
            if with_logits:
                logits.append(_check_output(extractor, batch_logits, len(batch), "logits"))
    if not features:
        return torch.empty(0, extractor.feature_dim), (torch.empty(0, 0) if with_logits else None)
    return torch.cat(features), (torch.cat(logits) if with_logits else None)
