"""Reading and writing image files: the one set of rules every reader in pixelforge follows.

- Decompression bombs: an image claiming more than ``max_pixels`` (default
  :data:`MAX_IMAGE_PIXELS`) is refused before it is decoded; PIL's own limit applies too.
- EXIF orientation is applied, so a phone photo stands the way it was taken.
- Modes: 16-bit and 32-bit integer images are scaled from 0..65535 (PIL would clamp at 255),
  float images are taken as 0..1 when they fit in it, transparency is composited on white
  when an image becomes L or RGB (:func:`to_mode`); :func:`normalise_mode` keeps alpha.
- Writing is atomic (a temporary file, then a rename): a viewer never sees half a file.
- Animations: :func:`read_frames` and :func:`write_frames` (GIFs, frame by frame).
- Transparency beside lossy colours: :func:`split_alpha` and :func:`join_alpha` keep the alpha
  plane apart, losslessly (zlib), as the codecs store it.

Every failure is an :class:`UnreadableImage` whose ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError, PixelforgeError
from .runs import atomic_write_bytes

MAX_IMAGE_PIXELS = 64_000_000
REASONS = ("too large", "not images", "unreadable", "corrupt or truncated", "unsupported", "format")
_INTEGER_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_ORIENTATION = 0x0112  # the EXIF tag


class UnreadableImage(DataError):
    """An image that cannot be used; ``reason`` is one of :data:`REASONS`, ``size`` the
    claimed (width, height) when it is known."""

    def __init__(self, name: str, reason: str, detail: str = "", size: tuple[int, int] | None = None):
        super().__init__(f"cannot read {name} as an image ({reason}{': ' + detail if detail else ''})")
        self.name, self.reason, self.detail, self.size = name, reason, detail, size


def open_image(source: str | os.PathLike | bytes, *, max_pixels: int = MAX_IMAGE_PIXELS,
               formats: set[str] | None = None, draft: int | None = None, name: str | None = None) -> Image.Image:
    """The fully decoded image of a file (or of ``bytes``), upright. ``formats``: the PIL format
    names accepted (default any); ``draft``: JPEG only, let the decoder shrink towards this size."""
    name = name or ("the upload" if isinstance(source, bytes) else str(source))
    if not isinstance(source, bytes):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"no image file at {path}")
        source = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError:
        raise UnreadableImage(name, "too large") from None
    except UnidentifiedImageError:
        raise UnreadableImage(name, "not images") from None
    except OSError:
        raise UnreadableImage(name, "unreadable") from None
    if formats is not None and image.format not in formats:
        raise UnreadableImage(name, "format", str(image.format))
    if image.width * image.height > max_pixels:
        raise UnreadableImage(name, "too large", f"{image.width}x{image.height} px, more than {max_pixels / 1e6:g} MP",
                              size=image.size)
    if draft:
        image.draft(None, (draft, draft))
    try:
        image.load()
        if image.getexif().get(_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return image
    except Exception as e:  # PIL decoders signal bad data with many exception types
        raise UnreadableImage(name, "corrupt or truncated", type(e).__name__) from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as it stands upright, read from its header alone."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                orientation = image.getexif().get(_ORIENTATION, 1)
                return image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
    except Exception:  # PIL signals unreadable data with many exception types
        raise UnreadableImage(str(path), "unreadable") from None


def read_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image file at full size in mode L, LA, RGB or RGBA."""
    return normalise_mode(open_image(path, max_pixels=max_pixels))


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode as 8-bit ``mode`` ("L" or "RGB"); transparency is composited on white."""
    if image.mode in _INTEGER_MODES:
        values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257
        image = Image.fromarray(np.rint(values).astype(np.uint8), "L")
    elif image.mode == "F":
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


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any PIL mode as L, LA, RGB or RGBA (alpha kept; high bit depths scaled as :func:`to_mode`)."""
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if image.mode in _INTEGER_MODES or image.mode == "F":
        return to_mode(image, "L")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA") and ("transparency" in image.info or image.mode == "PA"):
        return image.convert("RGBA")
    return image.convert("RGB")


def split_alpha(image: Image.Image) -> tuple[Image.Image, str, bytes]:
    """An image in any mode -> (its colours in mode L or RGB, its mode: L, LA, RGB or RGBA, its alpha
    plane zlib-compressed, or b"" when it has none)."""
    image = normalise_mode(image)
    alpha = b""
    if image.mode in ("LA", "RGBA"):
        alpha = zlib.compress(np.asarray(image.getchannel("A")).tobytes(), 9)
    return image.convert("L" if image.mode in ("L", "LA") else "RGB"), image.mode, alpha


def join_alpha(colour: Image.Image, mode: str, alpha: bytes, error: type[Exception] = DataError,
               name: str = "image") -> Image.Image:
    """What :func:`split_alpha` took apart, back in ``mode``: ``colour`` (L or RGB) with the alpha
    plane; a plane that does not decompress to the image's size raises ``error`` ("corrupted NAME")."""
    colour_mode = "L" if mode in ("L", "LA") else "RGB"
    image = colour if colour.mode == colour_mode else colour.convert(colour_mode)
    if mode in ("LA", "RGBA"):
        try:
            plane = zlib.decompress(alpha)
        except zlib.error:
            raise error(f"corrupted {name}: the alpha plane does not decompress") from None
        if len(plane) != image.width * image.height:
            raise error(f"corrupted {name}: the alpha plane has the wrong size")
        image.putalpha(Image.frombytes("L", image.size, plane))
    return image


def resize_short_side(image: Image.Image, side: int) -> Image.Image:
    """Scale ``image`` (antialiased bicubic) so that its shorter side is ``side`` px."""
    width, height = image.size
    scale = side / min(width, height)
    return image.resize((max(side, round(width * scale)), max(side, round(height * scale))),
                        Image.Resampling.BICUBIC, reducing_gap=3.0)


def resize_crop(image: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` (antialiased), then centre-crop to ``size`` x ``size``."""
    if image.size == (size, size):
        return image
    image = resize_short_side(image, size)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


# zlib level of written PNGs: 1, as OpenCV writes them. Pillow's default (6) takes 4x as long
# for a file 12% smaller (benchmarks/profiling.py --probes), and encoding an upscaled photo
# at level 6 took longer than upscaling it.
PNG_COMPRESS_LEVEL = 1
PNG_COLOUR_TYPES = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}  # the 8-bit modes encode_png writes
PNG_BAND_BYTES = 1 << 20  # rows filtered and deflated as one piece of work: a thread's share, bounded memory
# what Pillow would carry over from image.info into a PNG; images with any of it are Pillow's to write
PNG_INFO_KEPT_BY_PILLOW = ("icc_profile", "transparency", "default_image")


def encode_png(image: Image.Image, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """An 8-bit L, LA, RGB or RGBA image as PNG bytes, deflated on several threads.

    The rows are cut into bands of about :data:`PNG_BAND_BYTES`; each band gets PNG's "Up" filter
    (each byte minus the one above it, one vectorised subtraction) and is deflated on a thread of
    its own (zlib releases the GIL), and the bands are joined into one zlib stream, as pigz does:
    every band but the last ends on a byte boundary without the final-block flag, and the bands'
    Adler-32 checksums are combined into the stream's. Any PNG decoder reads the result; memory
    beyond the image and its compressed bytes is a few bands.
    """
    if image.mode not in PNG_COLOUR_TYPES:
        raise ValueError(f"encode_png writes {', '.join(PNG_COLOUR_TYPES)} images, not {image.mode}")
    width, height = image.size
    row_bytes = width * len(image.mode)  # one byte per channel, one letter per channel in these modes
    band_rows = max(1, PNG_BAND_BYTES // (row_bytes + 1))
    tops = range(0, height, band_rows)

    def filter_and_deflate(top: int) -> tuple[bytes, int, int]:
        bottom, above = min(top + band_rows, height), max(top - 1, 0)  # the row above the band: Up's reference
        raw = np.frombuffer(image.crop((0, above, width, bottom)).tobytes(), np.uint8).reshape(-1, row_bytes)
        filtered = np.empty((bottom - top, row_bytes + 1), np.uint8)
        filtered[:, 0] = 2  # each row's filter type: Up
        if top == 0:
            filtered[0, 1:] = raw[0]
        np.subtract(raw[1:], raw[:-1], out=filtered[int(top == 0):, 1:])
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate, no header
        end = zlib.Z_FINISH if bottom == height else zlib.Z_SYNC_FLUSH
        body = compressor.compress(filtered) + compressor.flush(end)
        return body, zlib.adler32(filtered), filtered.nbytes

    workers = min(os.cpu_count() or 1, 8, len(tops))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            bands = list(pool.map(filter_and_deflate, tops))
    else:
        bands = [filter_and_deflate(top) for top in tops]
    checksum = 1  # Adler-32 of no bytes
    for _, band_checksum, length in bands:
        checksum = adler32_combine(checksum, band_checksum, length)
    stream = zlib.compress(b"", level)[:2] + b"".join(body for body, _, _ in bands) + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, PNG_COLOUR_TYPES[image.mode], 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", stream) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 checksum of two byte strings joined, from each one's checksum and the second's
    length (zlib's ``adler32_combine``, which Python's zlib module does not expose)."""
    base = 65521
    rem = second_length % base
    low = ((first & 0xFFFF) + (second & 0xFFFF) + base - 1) % base
    high = (rem * (first & 0xFFFF) + (first >> 16) + (second >> 16) + base - rem) % base
    return low | high << 16


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_image(image: Image.Image, path: str | os.PathLike, format: str | None = None,
                png_compress_level: int = PNG_COMPRESS_LEVEL) -> Path:
    """Write ``image`` atomically in the format its suffix names (or ``format``)."""
    path = Path(path)
    buffer = io.BytesIO()
    format = format or Image.registered_extensions().get(path.suffix.lower())
    if (format == "PNG" and image.mode in PNG_COLOUR_TYPES and image.width and image.height
            and not any(key in image.info for key in PNG_INFO_KEPT_BY_PILLOW)):
        data = encode_png(image, png_compress_level)
    else:
        options = {"compress_level": png_compress_level} if format == "PNG" else {}
        try:
            image.save(buffer, format=format, **options)
        except (KeyError, ValueError, OSError) as e:
            raise PixelforgeError(f"cannot write {path}: {e}") from None
        data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def read_frames(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[list[Image.Image], list[int], int]:
    """An animation's frames (RGB), each frame's duration in ms and the loop count, read with
    the rules of :func:`read_image` (checked once, on the file)."""
    read_image(path, max_pixels)  # readable at all, and not a decompression bomb
    frames, durations = [], []
    try:
        with Image.open(path) as animation:
            loop = animation.info.get("loop", 0)
            for index in range(getattr(animation, "n_frames", 1)):
                animation.seek(index)
                durations.append(animation.info.get("duration", 100))
                frames.append(animation.convert("RGB"))
    except (OSError, ValueError, EOFError) as e:
        raise UnreadableImage(Path(path).name, "corrupt or truncated", str(e)) from None
    return frames, durations, loop


def write_frames(frames: list[Image.Image], path: str | os.PathLike, durations: list[int] | int,
                 loop: int = 0) -> Path:
    """Write an animated GIF atomically (``durations`` in ms, one per frame or one for all)."""
    if not frames:
        raise PixelforgeError(f"no frames to write to {path}")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=loop,
                   disposal=2, optimize=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path
