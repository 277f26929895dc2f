"""Validation splits: which training images are held out, and which split measures what.

Every dataset has a fixed validation split carved from its training data, so that choices
(the best checkpoint, early stopping, guidance scales, test-time augmentation, recipes) are
made on images training never sees, and the test split is used once, for the number that
is reported. :func:`~pixelforge.data.load_dataset` takes:

- ``split="train"``: the training data without the validation images (what training uses);
- ``split="val"``: the validation images;
- ``split="train+val"``: the whole training data, as it was before validation splits;
- ``split="test"``: the test split (named datasets; folders have none).

Named datasets hold out :data:`VAL_FRACTION` of their training images (5,000 of the
60,000 of Fashion-MNIST and MNIST, 120 of the 1,437 training digits): the images whose
index hashes lowest under :data:`VAL_SEED`, so the split is the same on every machine,
in every run and for every ``--seed``; a class selector (``fashion-mnist:7,9``) keeps
its classes' share of it. Folders hold out the files whose path (relative to the folder)
hashes below :data:`FOLDER_VAL_FRACTION`: a file keeps its side when others are added or
removed. A folder of fewer than :data:`MIN_FOLDER_FILES` files, or a named dataset too
small to spare an image, has no validation split: all of it trains, and asking for
``split="val"`` is a :class:`~pixelforge.errors.DataError`.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ..errors import DataError

SPLITS = ("train", "val", "test", "train+val")
VAL_FRACTION = 1 / 12
FOLDER_VAL_FRACTION = 0.1
MIN_FOLDER_FILES = 20
VAL_SEED = "pixelforge-val-1"
LEGACY_TRAIN_SPLIT = "train+val"
"""What a run trained on when its config.json predates validation splits (no ``data.split``)."""


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"no split {split!r}: choose {', '.join(SPLITS[:-1])} or {SPLITS[-1]}")
    return split


def report_split(spec: str) -> str:
    """The split reported numbers come from: "test", or "val" for folders (which have no test split)."""
    return "val" if spec.strip().startswith("folder:") else "test"


def _hash_unit(key: str) -> float:
    """A fixed pseudo-random number in [0, 1) for ``key`` (the same everywhere, unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{VAL_SEED}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _too_small(what: str) -> DataError:
    return DataError(f"{what} is too small for a validation split; train on it whole (split='train') "
                     "or give more images")


@functools.lru_cache(maxsize=16)
def _val_mask(n: int) -> np.ndarray:
    count = round(n * VAL_FRACTION)
    mask = np.zeros(n, dtype=bool)
    if count:
        keys = np.array([_hash_unit(str(i)) for i in range(n)])
        mask[np.argsort(keys, kind="stable")[:count]] = True
    mask.flags.writeable = False
    return mask


def carve(n: int, split: str, name: str) -> np.ndarray | None:
    """Indices of ``split`` among a named dataset's ``n`` training images (ascending), or
    None when the split takes them all ("train+val", or "train" with no validation split)."""
    if split not in ("train", "val"):
        return None
    mask = _val_mask(n)
    if not mask.any():
        if split == "val":
            raise _too_small(f"{name} ({n} training images)")
        return None
    return np.flatnonzero(mask if split == "val" else ~mask)


def folder_keeps(relative_paths: list[str], split: str, what: str) -> list[bool]:
    """Which of a folder's files (paths relative to it, "/"-separated) belong to ``split``."""
    if split == "train+val" or (split == "train" and len(relative_paths) < MIN_FOLDER_FILES):
        return [True] * len(relative_paths)
    if split == "test":
        raise DataError(f"folder datasets have no test split; {what}'s held-out images are split='val'")
    held_out = [_hash_unit(f"file:{path}") < FOLDER_VAL_FRACTION for path in relative_paths]
    if split == "val" and (len(relative_paths) < MIN_FOLDER_FILES or not any(held_out)):
        raise _too_small(f"{what} ({len(relative_paths)} files, {sum(held_out)} held out; a folder holds out "
                         f"about {FOLDER_VAL_FRACTION:.0%} of its files from {MIN_FOLDER_FILES} on)")
    return held_out if split == "val" else [not h for h in held_out]
