"""Tensor-side image conversions.

Datasets are kept as uint8 ``(N, C, H, W)`` tensors; models work on floats in
``[-1, 1]``. :func:`to_float` / :func:`to_uint8` convert between the two, and
:func:`convert_channels` / :func:`resize_images` bring in-memory datasets to the
requested channels and size (folders do the same per image with PIL).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Elements per interpolation batch: bounds the float32 working memory (~64 MiB).
RESIZE_BATCH_ELEMENTS = 1 << 24

# ITU-R 601-2 luma in 16-bit fixed point, exactly as PIL's RGB -> "L" conversion.
_LUMA_WEIGHTS = (19595, 38470, 7471)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """Map uint8 images (0..255) to float32 in ``[-1, 1]``."""
    return images.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Map floats in ``[-1, 1]`` back to uint8, rounding and clamping out-of-range values."""
    return ((x.detach().to(torch.float32) + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert uint8 ``(N, C, H, W)`` images between 1 and 3 channels.

    1 -> 3 repeats the gray plane; 3 -> 1 uses PIL's luminance formula so
    tensors and decoded files agree bit for bit.
    """
    current = images.shape[1]
    if current == channels:
        return images
    if current == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if current == 3 and channels == 1:
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=torch.int32, device=images.device).view(1, 3, 1, 1)
        luma = (images.to(torch.int32) * weights).sum(dim=1, keepdim=True)
        return ((luma + 0x8000) >> 16).to(torch.uint8)
    raise ValueError(f"cannot convert {current}-channel images to {channels} channels")


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side of uint8 ``(N, C, H, W)`` images to ``size``, then center-crop to a square.

    Uses antialiased bilinear interpolation on floats, rounded back to uint8,
    in batches so memory stays bounded for large datasets.
    """
    n, c, h, w = images.shape
    if h == size and w == size:
        return images
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = torch.empty((n, c, size, size), dtype=torch.uint8, device=images.device)
    batch = max(1, RESIZE_BATCH_ELEMENTS // (c * max(h * w, new_h * new_w)))
    for start in range(0, n, batch):
        chunk = images[start:start + batch].to(torch.float32)
        resized = F.interpolate(chunk, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + batch] = resized[:, :, top:top + size, left:left + size].round_().clamp_(0, 255).to(torch.uint8)
    return out


def patches(images: torch.Tensor, crop: int) -> torch.Tensor:
    """Overlapping square patches of side ``2 * crop`` (or the whole image when it is smaller),
    taken every ``crop // 2`` px: every crop-sized window of an image lies inside some patch,
    and an epoch (one pass over the patches) is long enough that the loop's per-epoch
    checkpoint costs little."""
    n, c, h, w = images.shape
    side = min(2 * crop, h, w)
    if side < crop:
        from ..errors import PixelforgeError

        raise PixelforgeError(f"images of {w}x{h} px are smaller than the {crop} px training crop; "
                              "pass a larger --size or a smaller --crop")
    stride = max(1, crop // 2)
    ys = sorted({*range(0, h - side + 1, stride), h - side})
    xs = sorted({*range(0, w - side + 1, stride), w - side})
    return torch.cat([images[:, :, y:y + side, x:x + side] for y in ys for x in xs]).contiguous()


def random_crops(images: torch.Tensor, crop: int) -> torch.Tensor:
    """One random ``crop`` x ``crop`` window per image of a [-1, 1] batch, randomly flipped and
    rotated (the 8 symmetries of the square: photos look natural in all of them); -> [0, 1]."""
    n, _, h, w = images.shape
    if h < crop or w < crop:
        from ..errors import PixelforgeError

        raise PixelforgeError(f"training images of {w}x{h} px are smaller than the {crop} px crop")
    ys = torch.randint(0, h - crop + 1, (n,)).tolist()
    xs = torch.randint(0, w - crop + 1, (n,)).tolist()
    flips = torch.randint(0, 2, (n,)).tolist()
    turns = torch.randint(0, 4, (n,)).tolist()
    out = []
    for i in range(n):
        x = images[i, :, ys[i]:ys[i] + crop, xs[i]:xs[i] + crop]
        if flips[i]:
            x = x.flip(-1)
        out.append(torch.rot90(x, turns[i], (1, 2)))
    return ((torch.stack(out).float() + 1) / 2).clamp(0, 1).contiguous()
