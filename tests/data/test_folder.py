"""load_dataset("folder:PATH"): layout, labels, skipped files, bombs and PIL modes."""

import io
import logging
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from pixelforge.data import folder, load_dataset
from pixelforge.errors import DataError


def _save(image: Image.Image, path, **params):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def _noise(size=(16, 16)) -> Image.Image:
    rng = np.random.default_rng(sum(size))
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "pixelforge.data" and r.levelno == logging.WARNING]


def test_class_subfolders_become_labels(tmp_path, caplog):
    _save(_noise(), tmp_path / "cats" / "a.png")
    _save(_noise((20, 12)), tmp_path / "cats" / "deeper" / "b.jpg")
    _save(_noise(), tmp_path / "dogs" / "c.png")
    _save(_noise(), tmp_path / "dogs" / ".hidden.png")
    _save(_noise(), tmp_path / ".git" / "d.png")

    data = load_dataset(f"folder:{tmp_path}", size=8)  # under 20 files: no validation split, all train

    assert data.images.shape == (3, 3, 8, 8) and data.images.dtype == torch.uint8
    assert data.classes == ["cats", "dogs"] and data.labels.tolist() == [0, 0, 1]
    assert data.labels.dtype == torch.int64
    assert data.name == tmp_path.name and data.source == str(tmp_path)
    assert _warnings(caplog) == []  # hidden files are ignored, not skipped


def test_images_in_the_folder_itself_mean_unlabeled(tmp_path):
    _save(_noise(), tmp_path / "a.png")
    _save(_noise(), tmp_path / "sub" / "b.png")
    data = load_dataset(f"folder:{tmp_path}", size=4, channels=1)
    assert data.images.shape == (2, 1, 4, 4)
    assert data.labels is None and data.classes == [] and data.num_classes == 0


def test_junk_files_are_skipped_with_one_warning(tmp_path, caplog):
    for name in ("a.png", "b.png"):
        _save(_noise(), tmp_path / name)
    good = io.BytesIO()
    _noise((64, 64)).save(good, format="PNG")
    (tmp_path / "truncated.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a picture")

    with caplog.at_level(logging.WARNING, logger="pixelforge.data"):
        data = load_dataset(f"folder:{tmp_path}", size=16)

    assert len(data) == 2
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert f"skipped 3 of 5 files in {tmp_path}" in messages[0]
    assert "2 not images" in messages[0] and "1 corrupt or truncated" in messages[0]


def test_decompression_bombs_are_refused_without_decoding(tmp_path, monkeypatch, caplog):
    _save(_noise(), tmp_path / "ok.png")
    (tmp_path / "bomb.png").write_bytes(_png_claiming(10_000, 10_000))  # above our limit only
    (tmp_path / "huge.png").write_bytes(_png_claiming(30_000, 30_000))  # above PIL's limit too
    decoded_sizes = []
    original_load = ImageFile.ImageFile.load

    def spying_load(self):
        decoded_sizes.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying_load)
    data = load_dataset(f"folder:{tmp_path}", size=16)

    assert len(data) == 1 and set(decoded_sizes) == {(16, 16)}
    assert "2 too large" in _warnings(caplog)[0]


def test_max_image_pixels_is_configurable(tmp_path, monkeypatch, caplog):
    _save(_noise((10, 10)), tmp_path / "small.png")
    _save(_noise((30, 30)), tmp_path / "big.png")
    monkeypatch.setattr(folder, "MAX_IMAGE_PIXELS", 500)
    data = load_dataset(f"folder:{tmp_path}", size=8)
    assert len(data) == 1
    assert "skipped 1 of 2 files" in _warnings(caplog)[0]


def _palette_image():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    return image


def _transparent_palette_image():
    image = _palette_image()
    image.info["transparency"] = 0
    return image


def _mode_image(mode: str, first, rest, size=(4, 4)):
    image = Image.new(mode, size, rest)
    image.putpixel((0, 0), first)
    return image


# (file name, image factory, save params, expected RGB of pixel (0, 0), expected RGB elsewhere)
MODE_CASES = {
    "P": ("p.png", _palette_image, {}, (0, 0, 255), (255, 0, 0)),
    "P+transparency": ("pt.png", _transparent_palette_image, {"transparency": 0}, (255, 255, 255), (255, 0, 0)),
    "LA": ("la.png", lambda: _mode_image("LA", (100, 0), (100, 255)), {}, (255,) * 3, (100,) * 3),
    "RGBA": ("rgba.png", lambda: _mode_image("RGBA", (10, 20, 30, 0), (10, 20, 30, 255)), {}, (255,) * 3, (10, 20, 30)),
    "CMYK-tiff": ("cmyk.tif", lambda: _mode_image("CMYK", (0, 0, 0, 0), (0, 0, 0, 255)), {}, (255,) * 3, (0,) * 3),
    "1": ("bilevel.png", lambda: _mode_image("1", 1, 0), {}, (255,) * 3, (0,) * 3),
    "I-tiff": ("int32.tif", lambda: _mode_image("I", 65535, 32768), {}, (255,) * 3, (128,) * 3),
    "F-tiff": ("float.tif", lambda: _mode_image("F", 1.0, 0.5), {}, (255,) * 3, (128,) * 3),
}


@pytest.mark.parametrize("case", list(MODE_CASES))
@pytest.mark.parametrize("channels", [1, 3])
def test_pil_modes(case, channels, tmp_path):
    file_name, factory, params, first, rest = MODE_CASES[case]
    _save(factory(), tmp_path / file_name, **params)

    data = load_dataset(f"folder:{tmp_path}", size=4, channels=channels)

    assert data.images.shape == (1, channels, 4, 4)
    image = data.images[0]
    if channels == 1:  # PIL's luminance of the expected colour
        first = (round((first[0] * 19595 + first[1] * 38470 + first[2] * 7471) / 65536),)
        rest = (round((rest[0] * 19595 + rest[1] * 38470 + rest[2] * 7471) / 65536),)
    assert image[:, 0, 0].tolist() == list(first)
    assert image[:, 3, 3].tolist() == list(rest)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_is_scaled_not_clamped(tmp_path, channels):
    columns = np.array([65535, 32768, 257, 0], dtype=np.uint16)
    _save(Image.fromarray(np.tile(columns, (4, 1))), tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as written:
        assert written.mode == "I;16"

    data = load_dataset(f"folder:{tmp_path}", size=4, channels=channels)

    assert data.images.shape == (1, channels, 4, 4)
    assert (data.images[0] == torch.tensor([255, 128, 1, 0], dtype=torch.uint8)).all()


def test_cmyk_jpeg(tmp_path):
    _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "red.jpg", quality=95)
    pixel = load_dataset(f"folder:{tmp_path}", size=8).images[0, :, 4, 4].tolist()
    assert pixel[0] > 230 and pixel[1] < 30 and pixel[2] < 30


def test_large_jpeg_is_resized_and_center_cropped(tmp_path):
    image = Image.new("RGB", (800, 400), (0, 0, 255))
    image.paste((255, 0, 0), (200, 0, 600, 400))  # red centre square, blue sides
    _save(image, tmp_path / "wide.jpg", quality=95)
    data = load_dataset(f"folder:{tmp_path}", size=32)
    assert data.images.shape == (1, 3, 32, 32)
    assert data.images[0, 0].float().mean() > 240 and data.images[0, 2].float().mean() < 15


def test_limit_stops_decoding_early(tmp_path, monkeypatch):
    for i in range(6):
        _save(_noise(), tmp_path / f"{i}.png")
    calls = []
    original = folder._decode
    monkeypatch.setattr(folder, "_decode", lambda *args: calls.append(args[0]) or original(*args))
    data = load_dataset(f"folder:{tmp_path}", size=8, limit=2)
    assert len(data) == 2 and [p.name for p in calls] == ["0.png", "1.png"]


def test_empty_or_unreadable_folder(tmp_path, caplog):
    with pytest.raises(DataError, match="no readable images in"):
        load_dataset(f"folder:{tmp_path}", size=8)
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no readable images in"):
        load_dataset(f"folder:{tmp_path}", size=8)
    assert "1 not images" in _warnings(caplog)[0]


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}", size=8)
    with pytest.raises(DataError, match="need a size"):
        load_dataset(f"folder:{tmp_path}")
    _save(_noise(), tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f"folder:{tmp_path / 'a.png'}", size=8)
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("folder:", size=8)


def test_shared_photos(shared_data):
    data = load_dataset(f"folder:{shared_data / 'photos'}", size=48, split="train+val")
    count = len(list((shared_data / "photos").glob("*.png")))  # 30 in today's shared data (SOURCES.md)
    assert count >= 17 and data.images.shape == (count, 3, 48, 48) and data.labels is None
    assert data.images.float().std() > 20  # real content, not blank
