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


# The image modes beside 8-bit RGB that a user's file may have (style transfer reads them all as RGB).
UNUSUAL_MODES = ("L", "LA", "RGBA", "I;16")


def save_in_mode(path, mode: str, h: int = 24, w: int = 32):
    """A synthetic photo saved as a PNG in ``mode``: grey (L), grey + alpha (LA), RGB + an alpha ramp
    (RGBA) or 16-bit grey (I;16, values up to 65535). Returns ``path``."""
    from PIL import Image

    rgb = synthetic_photo(np.random.default_rng(0), h, w)
    alpha = np.linspace(0, 255, w).round().astype(np.uint8)[None].repeat(h, 0)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, alpha]))  # RGBA
    else:
        image = Image.fromarray(rgb).convert(mode)
    assert image.mode == mode
    image.save(path)
    return path


def save_claiming_size(path, width: int, height: int):
    """A tiny valid PNG whose header claims ``width`` x ``height`` pixels: a huge image as far as
    any check before decoding can tell, written in microseconds. Returns ``path``."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR: 8-byte signature, length, type, then width, height
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # the chunk's CRC over its type and data
    path.write_bytes(bytes(data))
    return path
