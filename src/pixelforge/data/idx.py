"""Reading and writing the IDX format used by MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by raw data: two zero bytes, a type
code (only 0x08, unsigned byte, is supported), the number of dimensions, one
uint32 per dimension, then the values in C order. Images files carry magic
0x00000803 (three dimensions: count, rows, columns), label files 0x00000801.
Files may be gzip-compressed; the reader decides by the ``.gz`` suffix.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def read_idx_bytes(path: Path) -> bytes:
    """Return the (decompressed) content of an IDX file, ``.gz`` or not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file (truncated or corrupt): {exc}") from exc


def parse_idx(data: bytes, *, name: str = "IDX data", ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes into a read-only uint8 array without copying.

    ``ndim`` (3 for images, 1 for labels) also fixes the magic number that is
    accepted; ``name`` is used in error messages (normally the file path).
    """
    if len(data) < 4:
        raise DataError(f"{name} is truncated: {len(data)} bytes, not even an IDX header")
    zero, dtype_code, dims = struct.unpack_from(">HBB", data)
    magic = struct.unpack_from(">I", data)[0]
    if zero != 0 or dims == 0 or (ndim is not None and dims != ndim):
        expected = {3: IMAGES_MAGIC, 1: LABELS_MAGIC}.get(ndim)
        wanted = f" (expected 0x{expected:08x})" if expected is not None else ""
        raise DataError(f"{name} is not an IDX file of the expected kind: magic 0x{magic:08x}{wanted}")
    if dtype_code != UBYTE:
        raise DataError(f"{name} has IDX type code 0x{dtype_code:02x}; only unsigned bytes (0x08) are supported")
    header_size = 4 + 4 * dims
    if len(data) < header_size:
        raise DataError(f"{name} is truncated inside its IDX header")
    shape = struct.unpack_from(f">{dims}I", data, 4)
    expected_size = math.prod(shape)
    actual_size = len(data) - header_size
    if actual_size < expected_size:
        raise DataError(f"{name} is truncated: header says shape {shape} ({expected_size} bytes), found {actual_size}")
    if actual_size > expected_size:
        raise DataError(f"{name} has {actual_size - expected_size} unexpected bytes after its {shape} data")
    return np.frombuffer(data, dtype=np.uint8, count=expected_size, offset=header_size).reshape(shape)


def read_idx(path: Path, *, ndim: int | None = None) -> np.ndarray:
    """Read and parse an IDX file (``.gz`` or uncompressed)."""
    return parse_idx(read_idx_bytes(path), name=str(path), ndim=ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as (uncompressed) IDX bytes; the inverse of :func:`parse_idx`."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(f"IDX encoding needs a uint8 array with at least one dimension, got {array.dtype} {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, UBYTE, array.ndim, *array.shape)
    return header + array.tobytes()
