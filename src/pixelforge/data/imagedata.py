"""The in-memory dataset container returned by every loader."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageData:
    """A whole dataset as one uint8 tensor plus optional integer labels.

    ``images`` is ``(N, C, H, W)`` uint8, already at the requested channels and
    size; ``labels`` is int64 ``(N,)`` or ``None`` for unlabeled data, and label
    ``i`` names ``classes[i]``. ``source`` says where the data came from, ``split``
    which part of it this is ("train", "val", "test", "train+val"; None for data
    made in memory).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str]
    name: str
    source: str
    split: str | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and tuple(self.labels.shape) != (len(self.images),):
            raise ValueError(f"labels must have shape ({len(self.images)},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def take(self, idx: torch.Tensor, key: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images and labels at ``idx``, as :meth:`CropData.take <pixelforge.data.crops.CropData.take>`
        gives crops (``key`` seeds those; whole images need none)."""
        return self.images[idx], (self.labels[idx] if self.labels is not None else None)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def size(self) -> int:
        return self.images.shape[2]
