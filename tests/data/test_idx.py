"""IDX parsing: round trip, gzip, and rejection of malformed files."""

import gzip
import struct

import numpy as np
import pytest

from pixelforge.data import encode_idx, parse_idx, read_idx
from pixelforge.errors import DataError


def test_gzipped_images_file_round_trips(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(images)))

    parsed = read_idx(path, ndim=3)

    assert parsed.shape == (2, 3, 4) and parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)


def test_header_is_big_endian_with_the_mnist_magic():
    data = encode_idx(np.zeros((7, 28, 28), dtype=np.uint8))
    assert struct.unpack(">IIII", data[:16]) == (0x00000803, 7, 28, 28)
    assert struct.unpack(">II", encode_idx(np.zeros(5, dtype=np.uint8))[:8]) == (0x00000801, 5)


def test_uncompressed_labels_file(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(encode_idx(np.array([3, 1, 4], dtype=np.uint8)))
    assert read_idx(path, ndim=1).tolist() == [3, 1, 4]


@pytest.mark.parametrize("magic", [0x12345678, 0x00000801, 0x00000D03])
def test_bad_magic_is_rejected(magic):
    data = struct.pack(">IIII", magic, 1, 2, 2) + bytes(4)
    with pytest.raises(DataError, match="magic|type code"):
        parse_idx(data, name="x.idx", ndim=3)


@pytest.mark.parametrize("cut", [2, 10, 16 + 100])
def test_truncated_file_is_rejected(cut):
    data = encode_idx(np.zeros((3, 8, 8), dtype=np.uint8))[:cut]
    with pytest.raises(DataError, match="truncated") as info:
        parse_idx(data, name="images.idx", ndim=3)
    assert "images.idx" in str(info.value) and "\n" not in str(info.value)


def test_trailing_bytes_are_rejected():
    with pytest.raises(DataError, match="unexpected bytes"):
        parse_idx(encode_idx(np.zeros(4, dtype=np.uint8)) + b"junk", ndim=1)


def test_truncated_gzip_is_rejected(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(encode_idx(np.ones((4, 8, 8), dtype=np.uint8)))[:-12])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
