"""The files the autoencoder commands read and write: images (folders expanded), masks,
boxes, single output images and code arrays (.npy)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError, PixelforgeError
from ..imageio import open_image, to_mode
from ..images import save_png
from ..runs import atomic_write_bytes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def expand_image_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; folders -> their image files (by extension, sorted, not recursive)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise DataError(f"no image files (png, jpg, ...) in folder {p}")
            files += found
        else:
            files.append(p)
    if not files:
        raise PixelforgeError("give at least one image")
    return files


def read_image_tensor(path: str | os.PathLike, channels: int) -> torch.Tensor:
    """An image file as uint8 (C, H, W) for a ``channels``-channel model (a colour image is refused for 1)."""
    img = open_image(path)
    rgb = np.asarray(to_mode(img, "RGB"))
    if channels == 1:
        spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
        if (spread > 16).mean() > 0.01:
            raise PixelforgeError(f"{path} is a colour image, but this model takes grayscale (1-channel) "
                                  "images; convert it to grayscale first")
        arr = np.asarray(to_mode(img, "L"))[None]
    elif channels == 3:
        arr = rgb.transpose(2, 0, 1)
    else:
        raise PixelforgeError(f"image files cannot feed a {channels}-channel model")
    return torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True))


def read_mask(path: str | os.PathLike, size: tuple[int, int]) -> torch.Tensor:
    """A mask file -> bool (H, W), True where pixels are missing (white, > 127)."""
    arr = np.asarray(to_mode(open_image(path), "L"))
    if tuple(arr.shape) != tuple(size):
        raise PixelforgeError(f"mask {path} is {arr.shape[1]}x{arr.shape[0]} but the image is "
                              f"{size[1]}x{size[0]}; they must be the same size")
    m = torch.from_numpy(arr > 127)
    if not m.any():
        raise PixelforgeError(f"mask {path} marks no pixel as missing (white = missing)")
    return m


def box_to_mask(box: str | Sequence[int], size: tuple[int, int]) -> torch.Tensor:
    """``"x,y,w,h"`` in the image's pixels -> bool (H, W)."""
    items = box.split(",") if isinstance(box, str) else list(box)
    try:
        x, y, w, h = (int(str(v).strip()) for v in items)
    except ValueError:
        raise PixelforgeError(f"--box takes four whole numbers x,y,w,h, not {box!r}") from None
    H, W = size
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > W or y + h > H:
        raise PixelforgeError(f"box {x},{y},{w},{h} (x,y,w,h) does not fit inside the {W}x{H} image")
    m = torch.zeros(H, W, dtype=torch.bool)
    m[y:y + h, x:x + w] = True
    return m


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """One (C, H, W) image in [0, 1] as a PNG."""
    arr = (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return save_png(arr[:, :, 0] if arr.shape[2] == 1 else arr, path)


def save_codes(codes: torch.Tensor, path: str | os.PathLike) -> Path:
    """Codes as a float32 .npy file (written atomically)."""
    buf = io.BytesIO()
    np.save(buf, codes.detach().cpu().numpy().astype(np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_codes(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no code file at {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        raise DataError(f"cannot read {path} as codes: expected a NumPy .npy file of numbers "
                        "(as written by pixelforge encode)") from None
