"""Random crops of whole photos: what a folder loads as with ``random_crops=True``.

A small folder of large photos, loaded the usual way, is one centre crop per file (30 photos
are fewer images than one batch). With random crops the photos are kept whole in memory
(scaled down only when their shorter side is above :data:`MAX_CROP_SCALE` times the crop size)
and every batch cuts a fresh ``size`` x ``size`` window out of each photo it takes.

An epoch is as many crops as the photos hold side by side: a photo of W x H px is taken
``(W // size) * (H // size)`` times, so the loop's shuffled order runs over
these "tiles" and a large photo gives proportionally more crops. Where each window lies is
drawn from a generator seeded by the key the loop passes (the run's seed, the epoch, the
batch and the rank): crops differ from batch to batch and epoch to epoch, the same seed
draws the same crops, and a resumed run draws exactly the crops an uninterrupted one would.

Validation and evaluation never use this: they load the folder's held-out files as centre
crops (:func:`~pixelforge.data.load_dataset` without ``random_crops``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

MAX_CROP_SCALE = 8
"""Photos whose shorter side is above this many crop sizes are scaled down to it when loaded:
it bounds the memory a folder takes, and keeps a crop a recognisable part of the scene."""


@dataclass
class CropData:
    """Whole photos (uint8 ``(C, H, W)`` each, of any sizes no smaller than ``size``) from which
    :meth:`take` cuts random ``size`` x ``size`` crops; the other fields are :class:`ImageData`'s."""

    photos: list[torch.Tensor]
    labels: torch.Tensor | None
    classes: list[str]
    name: str
    source: str
    split: str | None
    size: int
    photo_of_tile: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.photos:
            raise ValueError("CropData needs at least one photo")
        for photo in self.photos:
            if (photo.dtype != torch.uint8 or photo.dim() != 3 or photo.shape[0] != self.photos[0].shape[0]
                    or min(photo.shape[1:]) < self.size):
                raise ValueError(f"photos must be uint8 (C, H, W) of one C and at least {self.size} px a side, "
                                 f"got {photo.dtype} {tuple(photo.shape)}")
        if self.labels is not None and tuple(self.labels.shape) != (len(self.photos),):
            raise ValueError(f"labels must have shape ({len(self.photos)},), got {tuple(self.labels.shape)}")
        tiles = [(p.shape[1] // self.size) * (p.shape[2] // self.size) for p in self.photos]
        self.photo_of_tile = torch.repeat_interleave(torch.arange(len(self.photos)), torch.tensor(tiles))

    def __len__(self) -> int:
        """Crops per epoch."""
        return len(self.photo_of_tile)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.photos[0].shape[0]

    def take(self, idx: torch.Tensor, key: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 ``(len(idx), C, size, size)`` crops of the photos of tiles ``idx`` and their labels;
        the windows are drawn from a generator seeded by ``key``."""
        generator = torch.Generator().manual_seed(_seed_of(key))
        photos = self.photo_of_tile[idx]
        where = torch.rand(len(photos), 2, generator=generator, dtype=torch.float64).tolist()
        out = torch.empty((len(photos), self.channels, self.size, self.size), dtype=torch.uint8)
        for i, (p, (y, x)) in enumerate(zip(photos.tolist(), where)):
            photo = self.photos[p]
            spare_h, spare_w = photo.shape[1] - self.size, photo.shape[2] - self.size
            top, left = min(int(y * (spare_h + 1)), spare_h), min(int(x * (spare_w + 1)), spare_w)
            out[i] = photo[:, top:top + self.size, left:left + self.size]
        return out, (self.labels[photos] if self.labels is not None else None)


def _seed_of(key: tuple[int, ...]) -> int:
    """A 63-bit generator seed for ``key`` (the same on every machine, unlike ``hash()``)."""
    digest = hashlib.blake2b(repr(tuple(key)).encode(), digest_size=8, person=b"pf-crops").digest()
    return int.from_bytes(digest, "big") >> 1
