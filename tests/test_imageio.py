"""The one set of image-reading rules (pixelforge.imageio) and the one weights locator."""

import zlib

import numpy as np
import pytest
from PIL import Image

from pixelforge import imageio
from pixelforge.errors import DataError, PixelforgeError
from pixelforge.imageio import (UnreadableImage, encode_png, image_size, join_alpha, open_image, read_image, split_alpha,
                                to_mode, write_image)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90 degrees
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert open_image(tmp_path / "phone.jpg").size == (10, 20) == image_size(tmp_path / "phone.jpg")


def test_sixteen_bit_alpha_and_bombs(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(to_mode(open_image(tmp_path / "deep.png"), "L")).min() == 255  # scaled, not clamped
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert to_mode(open_image(tmp_path / "clear.png"), "RGB").getpixel((0, 0)) == (255, 255, 255)
    assert read_image(tmp_path / "clear.png").mode == "RGBA"
    with pytest.raises(UnreadableImage, match="too large") as info:
        open_image(tmp_path / "clear.png", max_pixels=10)
    assert info.value.size == (4, 4)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UnreadableImage, match="not images"):
        open_image(tmp_path / "notes.png")
    with pytest.raises(DataError, match="no image file"):
        open_image(tmp_path / "missing.png")


def test_write_is_atomic_and_checks_the_format(tmp_path):
    out = write_image(Image.new("RGB", (4, 4)), tmp_path / "sub" / "a.jpg")
    assert Image.open(out).format == "JPEG" and not list(out.parent.glob(".*"))
    with pytest.raises(PixelforgeError, match="cannot write"):
        write_image(Image.new("RGB", (4, 4)), tmp_path / "a.nope")
    with pytest.raises(PixelforgeError, match="cannot write"):
        write_image(Image.new("RGBA", (4, 4)), tmp_path / "b.jpg")
    assert not (tmp_path / "b.jpg").exists()


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16"])
def test_alpha_is_split_off_and_joined_back_losslessly(mode):
    """What both codecs (amortized and overfitted) store: the colours, the mode, the alpha plane."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8), "RGBA").convert(mode)
    colour, kept, alpha = split_alpha(image)
    assert colour.mode == ("L" if kept in ("L", "LA") else "RGB") and kept in ("L", "LA", "RGB", "RGBA")
    assert bool(alpha) == (kept in ("LA", "RGBA"))
    back = join_alpha(colour.convert("RGB"), kept, alpha)  # a decoder may hand back RGB for a gray image
    assert back.mode == kept and back.size == image.size
    if kept in ("LA", "RGBA"):
        assert back.getchannel("A").tobytes() == image.getchannel("A").tobytes()
    with pytest.raises(DataError, match="corrupted test file: the alpha plane"):
        join_alpha(colour, "RGBA", b"not zlib", name="test file")
    with pytest.raises(PixelforgeError, match="wrong size"):
        join_alpha(colour, "LA", split_alpha(Image.new("LA", (2, 2)))[2], error=PixelforgeError)


def test_tasks_refuse_grad_accum_the_same_way():
    from pixelforge.training.style import AdaINTask, StylizerTask
    from pixelforge.training.translation import CycleGANTask, Pix2PixTask

    for task in (StylizerTask, AdaINTask, Pix2PixTask, CycleGANTask):
        with pytest.raises(PixelforgeError, match="--batch-size, not --grad-accum"):
            task.check_grad_accum(2)
        task.check_grad_accum(1)


def test_frames_round_trip_with_durations_and_loop(tmp_path):
    from pixelforge.imageio import read_frames, write_frames

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (12, 8), c) for c in colours]
    path = write_frames(frames, tmp_path / "anim.gif", [40, 80, 120], loop=2)
    assert not list(tmp_path.glob(".tmp*")) and not list(tmp_path.glob("*.tmp"))
    back, durations, loop = read_frames(path)
    assert len(back) == 3 and durations == [40, 80, 120] and loop == 2
    assert [f.getpixel((5, 5)) for f in back] == colours
    assert all(f.mode == "RGB" and f.size == (12, 8) for f in back)


def test_frames_errors(tmp_path):
    from pixelforge.errors import PixelforgeError
    from pixelforge.imageio import UnreadableImage, read_frames, write_frames

    with pytest.raises(PixelforgeError, match="no frames"):
        write_frames([], tmp_path / "none.gif", 100)
    bad = tmp_path / "bad.gif"
    bad.write_bytes(b"GIF89a" + b"\0" * 20)
    with pytest.raises(UnreadableImage):
        read_frames(bad)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (64, 50)])
def test_png_writer_round_trips_every_8_bit_mode(tmp_path, monkeypatch, mode, size):
    """encode_png's files decode to the same pixels, in one band or several (threads)."""
    monkeypatch.setattr(imageio, "PNG_BAND_BYTES", 100)  # several bands even for small images
    monkeypatch.setattr(imageio.os, "cpu_count", lambda: 3)
    rng = np.random.default_rng(0)
    channels = len(mode)
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    pixels = pixels[..., 0] if channels == 1 else pixels
    image = Image.fromarray(pixels, mode)
    write_image(image, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as back:
        back.load()
        assert back.mode == mode and back.size == size
        assert np.array_equal(np.asarray(back), pixels)
    data = (tmp_path / "out.png").read_bytes()
    start = data.index(b"IDAT") + 4
    zlib.decompress(data[start:start + int.from_bytes(data[start - 8:start - 4], "big")])  # checks Adler-32
    smooth = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1)), "L")
    assert len(encode_png(smooth)) < smooth.width * smooth.height / 20  # it does compress


def test_adler32_of_joined_bytes_from_the_parts():
    rng = np.random.default_rng(1)
    for first, second in ((b"", b"abc"), (b"abc", b""), (rng.bytes(70_000), rng.bytes(130_001))):
        combined = imageio.adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
        assert combined == zlib.adler32(first + second)


def test_png_writer_leaves_other_modes_and_metadata_to_pillow(tmp_path):
    """16-bit and palette images, and images with an ICC profile or a transparent colour, keep
    what Pillow writes for them; encode_png itself refuses what it cannot write."""
    deep = Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    write_image(deep, tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as back:
        assert np.array_equal(np.asarray(back).astype(np.uint16), np.asarray(deep))
    rgb = Image.new("RGB", (4, 4), (10, 20, 30))
    rgb.info["icc_profile"] = b"profile bytes"
    write_image(rgb, tmp_path / "icc.png")
    with Image.open(tmp_path / "icc.png") as back:
        assert back.info.get("icc_profile") == b"profile bytes"
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    write_image(palette, tmp_path / "palette.png")
    with Image.open(tmp_path / "palette.png") as back:
        assert back.mode == "P" and back.info.get("transparency") == 0
    with pytest.raises(ValueError, match="not P"):
        encode_png(palette)
