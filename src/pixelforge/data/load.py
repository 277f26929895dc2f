"""``load_dataset``: one entry point for every dataset spec.

A spec is a registered IDX dataset name (``fashion-mnist``, ``mnist``),
``digits`` (scikit-learn's bundled 8x8 digits) or ``folder:PATH``. Named
datasets take an optional class selector, ``fashion-mnist:7,9`` (ids or class
names), which keeps only those labels with their original ids. ``split`` picks the
training, validation or test images (:mod:`pixelforge.data.splits`). Folders can also load
as whole photos that training cuts random crops from (``random_crops=True``,
:mod:`pixelforge.data.crops`).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .. import dryrun
from ..errors import DataError
from .download import check_hash, download_file
from .crops import CropData
from .folder import load_folder
from .idx import parse_idx, read_idx_bytes
from .imagedata import ImageData
from .registry import (DIGITS_NAME, IDXSpec, cache_dir, find_dataset, get_spec,
                       locate_file, search_path)
from .splits import carve, check_split
from .transforms import convert_channels, resize_images

log = logging.getLogger("pixelforge.data")

DIGITS_TRAIN_FRACTION = 0.8


def _check_options(size: int | None, channels: int | None, limit: int | None, random_crops: bool) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise DataError(f"size must be a positive integer, got {size!r}")
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    if not isinstance(random_crops, bool):
        raise DataError(f"random_crops must be True or False, got {random_crops!r}")


def _download(spec: IDXSpec, allowed: bool) -> Path:
    """Fetch the dataset's missing files into the cache; raise a DataError naming the alternatives."""
    looked_in = ", ".join(str(root / spec.name) for root in search_path())
    install = f", install Debian's {spec.debian_package}" if spec.debian_package else ""
    if not allowed:
        raise DataError(f"{spec.name} not found in {looked_in} and downloads are disabled; "
                        f"put the IDX files in PIXELFORGE_DATA/{spec.name}/{install}, or allow downloads")
    mirror = os.environ.get("PIXELFORGE_DATA_MIRROR")
    bases = [f"{mirror.rstrip('/')}/{spec.name}"] if mirror else spec.urls
    target = cache_dir() / spec.name
    for file_name in spec.file_names:
        if locate_file(target, file_name):
            continue  # left by an earlier, partly failed download; verified when it was fetched
        hashes = spec.hashes[file_name]
        hash_spec, gunzip = (hashes.gz_hash, False) if hashes.gz_hash else (hashes.content_hash, True)
        failure: Exception = DataError("no download URL")
        for base in bases:
            url = f"{base.rstrip('/')}/{file_name}.gz"
            try:
                download_file(url, target / f"{file_name}.gz", hash_spec, desc=f"{spec.name}/{file_name}",
                              gunzip=gunzip)
                break
            except DataError as exc:
                failure = exc
                log.info("%s", exc)
        else:
            raise DataError(f"{spec.name} not found in {looked_in}; download failed ({failure}); "
                            f"put the IDX files in PIXELFORGE_DATA/{spec.name}/{install}, or go online") from failure
    return target


def _read_idx_file(directory: Path, file_name: str, spec: IDXSpec, ndim: int) -> np.ndarray:
    path = locate_file(directory, file_name)
    if path is None:
        raise DataError(f"{directory / file_name} is missing")
    data = read_idx_bytes(path)
    array = parse_idx(data, name=str(path), ndim=ndim)
    content_hash = spec.hashes[file_name].content_hash
    if content_hash:
        check_hash(data, content_hash, name=str(path))
    return array


def _file_split(split: str) -> str:
    """The published part a split comes from: validation images are carved from "train"."""
    return "test" if split == "test" else "train"


def _load_idx(spec: IDXSpec, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    part = _file_split(split)
    if part not in spec.files:
        raise DataError(f"{spec.name} has no {part} files; it has {' and '.join(spec.files)}")
    directory = find_dataset(spec.name) or _download(spec, download)
    images_file, labels_file = spec.files[part]
    images = _read_idx_file(directory, images_file, spec, ndim=3)
    labels = _read_idx_file(directory, labels_file, spec, ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{directory}: {images_file} has {len(images)} images but {labels_file} has {len(labels)} labels")
    if len(labels) and labels.max() >= len(spec.classes):
        raise DataError(f"{directory / labels_file} has label {labels.max()}, but {spec.name} has {len(spec.classes)} classes")
    # The only copy of the data: frombuffer arrays are read-only views of the file bytes.
    return (torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)), str(directory))


def _digits_array() -> np.ndarray:
    """scikit-learn's 8x8 digits as its (1797, 65) table: 64 pixels in 0..16, then the label. Read
    from the package's own file, since importing ``sklearn.datasets`` takes seconds."""
    package = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(package.origin).parent / "datasets" / "data" / "digits.csv.gz" if package and package.origin else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as f:
            return np.loadtxt(f, delimiter=",")
    from sklearn.datasets import load_digits  # another layout: through the library

    digits = load_digits()
    return np.column_stack([digits.data, digits.target])


def _load_digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    table = _digits_array()
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    n_train = int(len(images) * DIGITS_TRAIN_FRACTION)
    part = slice(n_train, None) if _file_split(split) == "test" else slice(0, n_train)
    return torch.from_numpy(images[part]).unsqueeze(1), torch.from_numpy(labels[part])


def _parse_selector(selector: str, classes: list[str], name: str) -> list[int]:
    """Class ids for ``"7,9"`` or ``"Sneaker,Bag"`` (names are matched case-insensitively)."""
    by_name = {cls.lower(): i for i, cls in enumerate(classes)}
    ids = []
    for token in (t.strip() for t in selector.split(",")):
        if token.isdigit() and int(token) < len(classes):
            ids.append(int(token))
        elif token.lower() in by_name:
            ids.append(by_name[token.lower()])
        else:
            raise DataError(f"{name} has no class {token!r}; use ids 0-{len(classes) - 1} or names: {', '.join(classes)}")
    return ids


def load_dataset(spec: str, *, size: int | None = None, channels: int | None = None,
                 split: str = "train", limit: int | None = None, download: bool = True,
                 random_crops: bool = False) -> ImageData | CropData:
    """Load a whole dataset into memory as uint8 ``(N, C, size, size)`` images.

    ``size`` and ``channels`` default to the dataset's native ones (channels 3
    for folders, which need an explicit size). ``split``: "train" (without the
    validation images), "val", "test" (not for folders) or "train+val" (see
    :mod:`pixelforge.data.splits`). ``limit`` keeps the first N images (after the
    split and the class selector). ``download=False`` forbids fetching a named dataset
    that is not found locally. ``random_crops=True`` (folders only) returns a
    :class:`~pixelforge.data.crops.CropData` of whole photos that training cuts random ``size``
    crops from, instead of one centre crop per file.
    """
    _check_options(size, channels, limit, random_crops)
    check_split(split)
    limit = dryrun.cap(limit, "images")
    spec = spec.strip()
    name, has_selector, rest = spec.partition(":")
    if name == "folder" and has_selector:
        if not rest:
            raise DataError("folder spec needs a path: folder:PATH")
        return load_folder(rest, size=size, channels=channels, limit=limit, split=split, random_crops=random_crops)
    if random_crops:
        raise DataError(f"random crops are for folders of photos (--data folder:PATH), not {spec}, whose "
                        "images are all one size; train on them whole")

    if name == DIGITS_NAME:
        images, labels = _load_digits(split)
        classes, source = [str(digit) for digit in range(10)], "scikit-learn"
    else:
        idx_spec = get_spec(name)
        images, labels, source = _load_idx(idx_spec, split, download)
        classes = list(idx_spec.classes)
    keep = carve(len(labels), split, name)
    if keep is not None:
        keep = torch.from_numpy(keep)
        images, labels = images[keep], labels[keep]

    if has_selector:
        keep = torch.tensor(_parse_selector(rest, classes, name), dtype=torch.int64)
        mask = torch.isin(labels, keep)
        images, labels = images[mask], labels[mask]
        if not len(labels):
            raise DataError(f"{spec} selects no images in the {split} split")
    if limit is not None:
        images, labels = images[:limit].clone(), labels[:limit].clone()  # don't pin the full tensors

    # Reduce channels before resizing and add them after, so interpolation runs on the fewest planes.
    if channels is not None and channels < images.shape[1]:
        images = convert_channels(images, channels)
    if size is not None:
        images = resize_images(images, size)
    if channels is not None:
        images = convert_channels(images, channels)
    return ImageData(images.contiguous(), labels.contiguous(), classes, name, source, split)
