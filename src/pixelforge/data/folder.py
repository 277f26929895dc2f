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

About a tenth of the files (chosen by a hash of their path, so that adding files moves
no other file) are the folder's validation images, which ``split="train"`` leaves out;
see :mod:`pixelforge.data.splits`.

Every image is one centre crop of ``size`` x ``size`` unless ``random_crops=True``: then the
photos are kept whole (at most :data:`~pixelforge.data.crops.MAX_CROP_SCALE` times ``size`` on
the shorter side) in a :class:`~pixelforge.data.crops.CropData` that training cuts random
``size`` crops from, and a photo smaller than ``size`` is an error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import DataError
from ..imageio import MAX_IMAGE_PIXELS, UnreadableImage, open_image, resize_crop, resize_short_side, to_mode
from .crops import MAX_CROP_SCALE, CropData
from .imagedata import ImageData
from .splits import check_split, folder_keeps

log = logging.getLogger("pixelforge.data")

__all__ = ["MAX_IMAGE_PIXELS", "load_folder", "load_image"]  # MAX_IMAGE_PIXELS: patch it here to change the limit

# Folders with fewer files than this decode without a progress bar.
PROGRESS_MIN_FILES = 200


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


def _open(path: Path, draft: int, channels: int) -> Image.Image:
    """One file decoded in mode L (``channels`` 1) or RGB, or raise :class:`_Skipped`."""
    try:
        image = open_image(path, draft=draft, max_pixels=MAX_IMAGE_PIXELS)
        return to_mode(image, "L" if channels == 1 else "RGB")
    except UnreadableImage as e:
        raise _Skipped(e.reason) from None
    except (ValueError, OSError):
        raise _Skipped("unsupported") from None


def _decode(path: Path, size: int, channels: int) -> np.ndarray:
    """Decode one file to a uint8 ``(size, size, channels)`` array (centre crop), or raise :class:`_Skipped`."""
    return np.asarray(resize_crop(_open(path, size, channels), size)).reshape(size, size, channels)


def _decode_photo(path: Path, size: int, channels: int, root: Path) -> np.ndarray:
    """Decode one file whole to a uint8 ``(H, W, channels)`` array for random ``size`` crops, its
    shorter side scaled down to ``MAX_CROP_SCALE * size`` when above it; :class:`DataError` when
    it is smaller than ``size``."""
    max_short_side = MAX_CROP_SCALE * size
    image = _open(path, max_short_side, channels)
    width, height = image.size
    if min(width, height) < size:
        raise DataError(f"{path.relative_to(root)} in {root} is {width}x{height} px, smaller than the {size} px "
                        "random crops; remove it, or train at a smaller --size or without --random-crops")
    if min(width, height) > max_short_side:
        image = resize_short_side(image, max_short_side)
    return np.array(image).reshape(image.height, image.width, channels)  # writable, for torch


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
                limit: int | None = None, split: str = "train", random_crops: bool = False) -> ImageData | CropData:
    """Load every readable image of ``split`` (train, val or train+val) below ``path`` as
    ``channels`` x ``size`` x ``size`` (channels default 3) centre crops, or with ``random_crops``
    as whole photos that training cuts random ``size`` crops from (see the module docstring)."""
    root = Path(path).expanduser().absolute()
    if size is None:
        raise DataError(f"folder datasets need a size: pass size= to load {root}")
    channels = 3 if channels is None else channels
    if not root.exists():
        raise DataError(f"folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")

    listed = _list_files(root)
    keeps = folder_keeps([file.relative_to(root).as_posix() for file, _ in listed], check_split(split), str(root))
    files = [entry for entry, keep in zip(listed, keeps) if keep]
    wanted = len(files) if limit is None else min(limit, len(files))
    images = np.empty((0 if random_crops else wanted, size, size, channels), dtype=np.uint8)
    photos: list[np.ndarray] = []
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
                if random_crops:
                    photos.append(_decode_photo(file, size, channels, root))
                else:
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

    subfolders = sorted({top for _, top in listed if top is not None})  # every split has the same classes
    labels, classes = None, []
    if subfolders and None not in tops:
        index = {name: i for i, name in enumerate(subfolders)}
        labels = torch.tensor([index[top] for top in tops], dtype=torch.int64)
        classes = subfolders
    if random_crops:
        return CropData([torch.from_numpy(photo).permute(2, 0, 1).contiguous() for photo in photos],
                        labels, classes, root.name, str(root), split, size)
    images_tensor = torch.from_numpy(images[:len(tops)]).permute(0, 3, 1, 2).contiguous()
    return ImageData(images_tensor, labels, classes, root.name, str(root), split)
