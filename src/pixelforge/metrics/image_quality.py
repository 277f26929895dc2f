"""Full-reference image quality: PSNR and SSIM, one value per image pair.

These compare each output with its own ground truth (reconstruction,
super-resolution, compression, denoising), unlike the sample-based metrics in
:mod:`pixelforge.metrics.fidelity`, which compare whole sets. Both are thin
wrappers around ``torchmetrics.functional`` that check shapes and return one
value per image instead of a batch mean.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ..errors import PixelforgeError

SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5


def _image_pair(pred, target, metric: str) -> tuple[Tensor, Tensor]:
    """Both batches as float tensors of one (N, C, H, W) shape."""
    tensors = []
    for what, x in (("pred", pred), ("target", target)):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, Tensor):
            raise PixelforgeError(f"{metric}: {what} must be a tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            # Scaling integers silently would make data_range a guess.
            raise PixelforgeError(f"{metric}: {what} must be a float tensor, got {x.dtype} "
                                  "(convert uint8 with x.float() / 255 and keep data_range=1.0)")
        tensors.append(x.detach().float() if x.dtype in (torch.float16, torch.bfloat16) else x.detach())
    pred, target = tensors
    if pred.shape != target.shape:
        raise PixelforgeError(f"{metric}: pred and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() != 4:
        raise PixelforgeError(f"{metric}: images must have shape (N, C, H, W), got {tuple(pred.shape)}")
    return pred, target.to(pred.dtype)


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per image, in dB: ``10 log10(data_range^2 / MSE)``; shape (N,).

    Higher is better; identical images give ``inf``. ``data_range`` is the
    span of valid pixel values (1.0 for [0, 1] images, 255 for 0..255).
    Pitfalls: it only measures pixel-wise error, so it rewards blurry averages
    over sharp but slightly shifted detail and disagrees with perceived quality.
    """
    pred, target = _image_pair(pred, target, "PSNR")
    return peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none", dim=(1, 2, 3))


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image (Wang et al. 2004); shape (N,), 1 for identical images.

    Compares local means, variances and covariance in an 11x11 Gaussian window
    (sigma 1.5) and averages over the image and its channels. Closer to
    perception than PSNR, but still blind to semantics and insensitive to some
    blur; images smaller than the window are handled through reflection padding,
    which makes tiny images (below 11 px) only roughly comparable.
    """
    pred, target = _image_pair(pred, target, "SSIM")
    smallest = min(pred.shape[-2:])
    if smallest <= SSIM_KERNEL_SIZE // 2:
        raise PixelforgeError(f"SSIM needs images of at least {SSIM_KERNEL_SIZE // 2 + 1}x{SSIM_KERNEL_SIZE // 2 + 1}"
                              f" pixels for its {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} window, got "
                              f"{tuple(pred.shape[-2:])}")
    return structural_similarity_index_measure(pred, target, kernel_size=SSIM_KERNEL_SIZE, sigma=SSIM_SIGMA,
                                               data_range=data_range, reduction="none")
