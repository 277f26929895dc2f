"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to *both* real and
fake images before the discriminator, so D cannot memorise a small training set while G
still receives gradients through the augmentation.

Policies: ``color`` (brightness, saturation, contrast), ``translation`` (shift by up to 1/8
of the size, padded with the background, 0 unless told), ``cutout`` (one square of half the
size set to the background). ``flip``
(random horizontal mirror) and ``crop`` (a shift by up to 1/16 of the size, the classic
pad-and-random-crop) are not part of DiffAugment but serve classifier training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout", "flip", "crop")
BLACK = -1.0  # black in the [-1, 1] images the training loop gives the tasks


def parse_policy(policy: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in parts if p not in POLICIES]
    if bad:
        from ..errors import PixelforgeError

        raise PixelforgeError(f"unknown DiffAugment policy {', '.join(bad)}; use a comma list of {', '.join(POLICIES)}")
    return parts


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], background: float = 0.0) -> torch.Tensor:
    """``x`` under the policy's random changes; what a shift uncovers and what cutout removes is
    filled with ``background`` (DiffAugment's 0; :data:`BLACK` for images on black, so that no
    change paints a mid-grey the data never shows)."""
    parts = parse_policy(policy) if isinstance(policy, str) else policy
    for p in parts:
        x = _AUGMENTS[p](x, background) if p in _FILLED else _AUGMENTS[p](x)
    return x


def _color(x):
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device)  # noqa: E731
    x = x + (r() - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (r() * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (r() + 0.5) + mean


def _translation(x, background: float = 0.0, ratio: float = 0.125):
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy.unsqueeze(0) + ty + 1).clamp(0, h + 1)
    gx = (gx.unsqueeze(0) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1], value=background)
    idx = (gy * (w + 2) + gx).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x, background: float = 0.0, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    dy = gy.unsqueeze(0) - (oy - ch // 2)
    dx = gx.unsqueeze(0) - (ox - cw // 2)
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)
    return x.masked_fill(inside.unsqueeze(1), background)


def _flip(x):
    mirror = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(mirror, x.flip(3), x)


def _crop(x, background: float = 0.0):
    return _translation(x, background, ratio=1 / 16)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout, "flip": _flip, "crop": _crop}
_FILLED = ("translation", "cutout", "crop")  # the changes that uncover or remove pixels


def mixup(x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """mixup (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)``
    drawn once per batch and ``perm`` a random pairing of the batch; the loss mixes the two
    labels' cross-entropies with the same ``lam``. Returns (mixed batch, perm, lam)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0], device=x.device)
    return lam * x + (1 - lam) * x[perm], perm, lam
