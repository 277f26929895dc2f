"""Loading a folder of image files of any format PIL reads.

The folder is walked recursively in sorted order; hidden files and folders
(names starting with ".") are ignored. When the images live in immediate
subfolders (no image directly in the folder), the sorted names of those
subfolders are the classes and each image is labelled by the subfolder it is
under; otherwise the dataset is unlabeled.

Every other file is tried with PIL, whatever its extension. Files that are not
images, are corrupt or truncated, or claim more than :data:`MAX_IMAGE_PIXELS`
pixels (decompression bombs, refused before decoding) are skipped, and one
warning on the ``pixelforge.data`` logger summarises what was skipped.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..errors import DataError
from .imagedata import ImageData

log = logging.getLogger("pixelforge.data")

# Images claiming more pixels than this are refused without being decoded.
# PIL's own, larger limit (twice PIL.Image.MAX_IMAGE_PIXELS) applies as well.
MAX_IMAGE_PIXELS = 64_000_000

# Folders with fewer files than this decode without a progress bar.
PROGRESS_MIN_FILES = 200

_INTEGER_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


class _Skipped(Exception):
    """A file that is not usable as an image; ``reason`` is its category in the summary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _list_files(root: Path) -> list[tuple[Path, str | None]]:
    """All non-hidden files below ``root`` in sorted walk order, each with its top-level subfolder (or None)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        relative = here.relative_to(root)
        top = relative.parts[0] if relative.parts else None
        files.extend((here / name, top) for name in sorted(filenames) if not name.startswith("."))
    return files


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL mode to 8-bit ``mode`` ("L" or "RGB")."""
    if image.mode in _INTEGER_MODES:
        # Integer images are taken as 16-bit and scaled; PIL's conversion would clamp at 255.
        values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257
        image = Image.fromarray(np.rint(values).astype(np.uint8), "L")
    elif image.mode == "F":
        # Float images are taken as 0..1 when they fit in it, else as 0..255.
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        if values.size and values.max() <= 1.0:
            values = values * 255
        image = Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8), "L")
    elif image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode == "1" else "RGB")
    return image if image.mode == mode else image.convert(mode)


def _resize_crop(image: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` (antialiased), then center-crop to ``size`` x ``size``."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_width, new_height), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    return image.crop((left, top, left + size, top + size))


def _decode(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode one file to a uint8 ``(size, size, channels)`` array, or raise :class:`_Skipped`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise _Skipped("too large") from None
    except UnidentifiedImageError:
        raise _Skipped("not images") from None
    except OSError:
        raise _Skipped("unreadable") from None
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _Skipped("too large")
        image.draft(None, (size, size))  # JPEG only: let the decoder downscale by up to 8x
        try:
            image.load()
        except Exception:  # PIL decoders signal bad data with many exception types
            raise _Skipped("corrupt or truncated") from None
        try:
            converted = _to_mode(image, "L" if channels == 1 else "RGB")
        except (ValueError, OSError):
            raise _Skipped("unsupported") from None
        array = np.asarray(_resize_crop(converted, size))
    return array.reshape(size, size, channels)


def load_image(path: str | os.PathLike, *, size: int, channels: int) -> torch.Tensor:
    """One image file as a uint8 ``(channels, size, size)`` tensor (resized, center-cropped)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"no image file at {path}")
    try:
        array = _decode(path, size, channels)
    except _Skipped as e:
        raise DataError(f"cannot use {path} as an image ({e.reason})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def load_folder(path: str | os.PathLike, *, size: int | None, channels: int | None = None,
                limit: int | None = None) -> ImageData:
    """Load every readable image below ``path`` as ``channels`` x ``size`` x ``size`` (channels default 3)."""
    root = Path(path).expanduser().absolute()
    if size is None:
        raise DataError(f"folder datasets need a size: pass size= to load {root}")
    channels = 3 if channels is None else channels
    if not root.exists():
        raise DataError(f"folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")

    files = _list_files(root)
    wanted = len(files) if limit is None else min(limit, len(files))
    images = np.empty((wanted, size, size, channels), dtype=np.uint8)
    tops: list[str | None] = []
    skipped: Counter[str] = Counter()
    tried = 0
    progress = tqdm(files, desc=f"decoding {root.name}", unit="file", file=sys.stderr,
                    disable=True if len(files) < PROGRESS_MIN_FILES else None)
    with progress:
        for file, top in progress:
            if len(tops) == wanted:
                break
            tried += 1
            try:
                images[len(tops)] = _decode(file, size, channels)
            except _Skipped as skip:
                skipped[skip.reason] += 1
                continue
            tops.append(top)

    if skipped:
        details = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        log.warning("skipped %d of %d files in %s (%s)", sum(skipped.values()), tried, root, details)
    if not tops:
        raise DataError(f"no readable images in {root}")

    images_tensor = torch.from_numpy(images[:len(tops)]).permute(0, 3, 1, 2).contiguous()
    subfolders = sorted({top for _, top in files if top is not None})
    if subfolders and None not in tops:
        index = {name: i for i, name in enumerate(subfolders)}
        labels = torch.tensor([index[top] for top in tops], dtype=torch.int64)
        return ImageData(images_tensor, labels, subfolders, root.name, str(root))
    return ImageData(images_tensor, None, [], root.name, str(root))
