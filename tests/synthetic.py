"""Synthetic test images the tests share (no data files needed)."""

import numpy as np


def synthetic_photo(rng: np.random.Generator, h: int, w: int, discs: int = 4, max_radius: int = 14,
                    stripe_period: float = 7.0, dark_columns: bool = True) -> np.ndarray:
    """A synthetic RGB 'photo' (h, w, 3) uint8: smooth colour gradients, a few hard-edged discs
    and (with ``dark_columns``) fine stripes: edges, flat areas and texture, like a photo."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / stripe_period)], -1)
    for _ in range(discs):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, max_radius)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.random(3)
    if dark_columns:
        img[:, ::5] *= 0.7
    return (img.clip(0, 1) * 255).astype(np.uint8)
