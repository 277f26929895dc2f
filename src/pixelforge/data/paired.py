"""Data for image-to-image translation: paired folders, built-in pairings, unpaired domains.

Paired data (pix2pix) comes either from two folders whose files match by name (stem:
``A/cat.jpg`` pairs with ``B/cat.png``), or is made on the fly from one folder of target
images by a built-in *pairing* that computes the input from the target:

- ``edges``  Sobel edge magnitude of the Gaussian-smoothed luma, drawn dark on white
             (the first two steps of Canny, without thinning or hysteresis); 1 channel.
- ``gray``   the ITU-R 601 luma: colourisation; 1 channel.
- ``blur``   a Gaussian blur (sigma 2 px): deblurring.
- ``lowres`` 4x area downscaling then bicubic upscaling: single-image super-resolution
             at the same size.

All of them work on float batches in [-1, 1] (the training loop's range), so a task can
derive the input of every random crop after cropping. Unpaired data (CycleGAN) is two
datasets, each any spec :func:`~pixelforge.data.load_dataset` takes (``folder:PATH``,
``fashion-mnist:7``, ...).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DataError
from ..imageio import image_size
from .folder import load_image
from .imagedata import ImageData
from .load import load_dataset

log = logging.getLogger("pixelforge.data")

PAIRINGS = ("edges", "gray", "blur", "lowres")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Pairing:
    """A parsed ``--pairs`` value: a built-in ``kind``, or ``folder`` with the B ``path``."""

    kind: str
    path: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "Pairing":
        spec = (spec or "").strip()
        if spec.startswith("folder:"):
            path = spec[len("folder:"):]
            if not path:
                raise DataError("--pairs folder: needs a path: folder:PATH_TO_B")
            return cls("folder", path)
        if spec not in PAIRINGS:
            raise DataError(f"unknown pairing {spec!r}; use one of {', '.join(PAIRINGS)} or folder:PATH_TO_B")
        return cls(spec)

    def input_channels(self, target_channels: int) -> int:
        """Channels of the input a built-in pairing makes from ``target_channels`` targets."""
        return 1 if self.kind in ("edges", "gray") else target_channels


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, H, W); a 1-channel batch is returned as is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius 3 sigma, reflect padding) of every channel."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def sobel_edges(x: torch.Tensor, sigma: float = 1.0, gain: float = 2.0) -> torch.Tensor:
    """Edge strength in [0, 1] of (N, C, H, W) images in [0, 1]: the Sobel gradient magnitude
    of the smoothed luma, times ``gain`` (a 0 -> 1 step gives 4 before the gain), clipped."""
    y = gaussian_blur(luma(x), sigma) if sigma > 0 else luma(x)
    kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=y.dtype, device=y.device)
    k = torch.stack([kx, kx.t()]).unsqueeze(1)
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k)
    return (g.pow(2).sum(1, keepdim=True).sqrt() * gain / 4).clamp(0, 1)


def make_input(kind: str, target: torch.Tensor) -> torch.Tensor:
    """The input a built-in pairing derives from a target batch; both in [-1, 1]."""
    x = (target.float() + 1) / 2
    if kind == "edges":
        out = 1 - sobel_edges(x)
    elif kind == "gray":
        out = luma(x)
    elif kind == "blur":
        out = gaussian_blur(x, 2.0)
    elif kind == "lowres":
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(1, h // 4), max(1, w // 4)), mode="area")
        out = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    else:
        raise DataError(f"unknown pairing {kind!r}; use one of {', '.join(PAIRINGS)}")
    return (out.clamp(0, 1) * 2 - 1).to(target.dtype)


def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder" if folder.exists() else f"folder {folder} does not exist")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            if p.stem in files:
                raise DataError(f"{folder} has two images named {p.stem!r} ({files[p.stem].name}, {p.name}); "
                                "pairs are matched by file name without extension")
            files[p.stem] = p
    return files


def match_pairs(a: str | os.PathLike, b: str | os.PathLike) -> list[tuple[Path, Path]]:
    """The (A, B) files whose names match, sorted; an error when none match or a pair's
    images differ in size (they would not be aligned pixel for pixel)."""
    fa, fb = _image_files(Path(a).expanduser()), _image_files(Path(b).expanduser())
    if not fa:
        raise DataError(f"no images in {a}")
    if not fb:
        raise DataError(f"no images in {b}")
    stems = sorted(set(fa) & set(fb))
    if not stems:
        ea, eb = next(iter(fa.values())).name, next(iter(fb.values())).name
        raise DataError(f"no matching pairs: none of the {len(fa)} file names in {a} (e.g. {ea}) "
                        f"has a file of the same name in {b} (e.g. {eb})")
    unmatched = len(fa) + len(fb) - 2 * len(stems)
    if unmatched:
        log.warning("%d image(s) in %s and %s have no partner and are left out", unmatched, a, b)
    pairs = []
    for s in stems:
        sa, sb = image_size(fa[s]), image_size(fb[s])
        if sa != sb:
            raise DataError(f"pair {s!r} has images of different sizes: {fa[s]} is {sa[0]}x{sa[1]} but {fb[s]} is "
                            f"{sb[0]}x{sb[1]}; paired images must be aligned pixel for pixel")
        pairs.append((fa[s], fb[s]))
    return pairs


def load_pairs(a: str | os.PathLike, b: str | os.PathLike, *, size: int, channels_a: int = 3,
               channels_b: int = 3, limit: int | None = None) -> tuple[ImageData, int]:
    """Matched pairs as one ImageData of channel-concatenated A||B images (so that one index
    and one random crop serve both halves), and the number of A channels."""
    pairs = match_pairs(a, b)[:limit]
    images = torch.stack([torch.cat([load_image(pa, size=size, channels=channels_a),
                                     load_image(pb, size=size, channels=channels_b)]) for pa, pb in pairs])
    return ImageData(images, None, [], f"pairs:{Path(a).name}+{Path(b).name}", f"{a} + {b}"), channels_a


def load_domain(spec: str, which: str, *, size: int | None, channels: int | None,
                limit: int | None = None) -> ImageData:
    """One domain of unpaired data; an empty one is an error that names it."""
    try:
        data = load_dataset(spec, size=size, channels=channels, limit=limit)
    except DataError as e:
        raise DataError(f"domain {which} ({spec}): {e}") from None
    if len(data) == 0:
        raise DataError(f"domain {which} ({spec}) is empty")
    return data


def random_crops(images: torch.Tensor, crop: int, flip: bool = True) -> torch.Tensor:
    """One random ``crop`` x ``crop`` window per image (the whole image when it is no larger),
    flipped left-right at random."""
    n, _, h, w = images.shape
    if crop >= h and crop >= w:
        out = images
    else:
        ch, cw = min(crop, h), min(crop, w)
        ys = torch.randint(0, h - ch + 1, (n,)).tolist()
        xs = torch.randint(0, w - cw + 1, (n,)).tolist()
        out = torch.stack([images[i, :, ys[i]:ys[i] + ch, xs[i]:xs[i] + cw] for i in range(n)])
    if flip:
        mask = torch.rand(n) < 0.5
        if mask.any():
            out = out.clone()
            out[mask] = out[mask].flip(-1)
    return out.contiguous()
