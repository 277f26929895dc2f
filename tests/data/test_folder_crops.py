"""Folders of photos as random crops (random_crops=True / --random-crops), and GAN training on
folders of mixed sizes and modes: crops differ from batch to batch and epoch to epoch, repeat
with the seed and across a resume, validation images stay centre crops, bad input is one line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelforge
from pixelforge.data import CropData, ImageData, load_dataset
from pixelforge.data.crops import MAX_CROP_SCALE
from pixelforge.errors import DataError, PixelforgeError
from pixelforge.pipelines.common import held_out
from pixelforge.training.gan import GANTask

from tests.conftest import TINY
from tests.test_cli import assert_clean_error, run_cli


def _photo(seed: int, size=(40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _folder(path, count=6, size=(40, 30)):
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _photo(i, size).save(path / f"photo{i:02d}.png")
    return path


def _is_window_of(crop: torch.Tensor, photo: torch.Tensor) -> bool:
    s = crop.shape[-1]
    windows = photo.unfold(1, s, 1).unfold(2, s, 1)  # (C, H-s+1, W-s+1, s, s)
    return bool((windows == crop[:, None, None]).flatten(3).all(3).all(0).any())


def test_random_crops_are_windows_of_whole_photos_fresh_per_key_and_repeatable(tmp_path):
    folder = _folder(tmp_path / "photos")
    data = load_dataset(f"folder:{folder}", size=16, random_crops=True)

    assert isinstance(data, CropData) and data.size == 16 and data.channels == 3 and data.labels is None
    assert [tuple(p.shape) for p in data.photos] == [(3, 30, 40)] * 6  # whole, not one 16 px crop each
    assert len(data) == 6 * (40 // 16) * (30 // 16)  # an epoch: the crops the photos hold side by side
    idx = torch.arange(len(data))
    crops, labels = data.take(idx, (0, 0, 0, 0))
    assert crops.shape == (12, 3, 16, 16) and crops.dtype == torch.uint8 and labels is None
    assert all(_is_window_of(c, data.photos[p]) for c, p in zip(crops, data.photo_of_tile.tolist()))
    assert torch.equal(crops, data.take(idx, (0, 0, 0, 0))[0])  # the same key: the same crops
    for other in ((0, 0, 1, 0), (0, 1, 0, 0), (1, 0, 0, 0)):  # another batch, epoch, seed
        assert not torch.equal(crops, data.take(idx, other)[0])


def test_large_photos_are_scaled_down_small_ones_are_an_error(tmp_path):
    big = tmp_path / "big"
    _photo(0, (300, 200)).save(_folder(big, count=1) / "wide.png")
    data = load_dataset(f"folder:{big}", size=8, random_crops=True)
    assert sorted(tuple(p.shape[1:]) for p in data.photos) == [(30, 40), (MAX_CROP_SCALE * 8, 96)]

    _photo(1, (12, 40)).save(_folder(tmp_path / "small") / "narrow.png")
    with pytest.raises(DataError, match=r"narrow.png in .* is 12x40 px, smaller than the 16 px random crops"):
        load_dataset(f"folder:{tmp_path / 'small'}", size=16, random_crops=True)
    assert len(load_dataset(f"folder:{tmp_path / 'small'}", size=16)) == 7  # centre crops upscale it


def test_random_crops_only_for_folders(tmp_path):
    with pytest.raises(DataError, match="random crops are for folders of photos"):
        load_dataset("digits", size=8, random_crops=True)
    with pytest.raises(DataError, match="random_crops must be True or False"):
        load_dataset(f"folder:{_folder(tmp_path)}", size=8, random_crops="yes")


def test_class_subfolders_label_the_crops(tmp_path):
    _folder(tmp_path / "a", count=2)
    _folder(tmp_path / "b", count=1, size=(64, 32))
    data = load_dataset(f"folder:{tmp_path}", size=16, random_crops=True)
    assert data.classes == ["a", "b"] and data.labels.tolist() == [0, 0, 1]
    assert data.photo_of_tile.tolist() == [0, 0, 1, 1] + [2] * 8  # the large photo is taken more often
    _, labels = data.take(torch.tensor([0, 11, 3]), (0, 0, 0, 0))
    assert labels.tolist() == [0, 1, 0]


def test_validation_images_stay_centre_crops(tmp_path):
    folder = _folder(tmp_path / "photos", count=24, size=(48, 36))  # from 20 files on: a validation split
    train = load_dataset(f"folder:{folder}", size=28, random_crops=True)
    val = load_dataset(f"folder:{folder}", size=28, split="val")
    assert isinstance(val, ImageData) and len(train.photos) + len(val) == 24

    run = tmp_path / "run"
    pixelforge.train_gan(f"folder:{folder}", run, max_steps=1, seed=0, random_crops=True,
                         **{**TINY, "batch_size": 4})
    d = json.loads((run / "config.json").read_text())["data"]
    assert d["random_crops"] is True
    for _ in range(2):
        assert torch.equal(held_out(d, "val").images, val.images)


def _recorded_batches(monkeypatch) -> list[torch.Tensor]:
    batches = []
    step = GANTask.step

    def recording(self, real, labels):
        batches.append(real.float().cpu().clone())
        return step(self, real, labels)

    monkeypatch.setattr(GANTask, "step", recording)
    return batches


def test_gan_trains_on_fresh_crops_every_batch_repeatably_and_resumes_exactly(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "photos", size=(64, 48))  # 2 crops of 28 px per photo: 12 per epoch
    options = {**TINY, "batch_size": 4, "conditional": False, "random_crops": True}
    batches = _recorded_batches(monkeypatch)
    pixelforge.train_gan(f"folder:{folder}", tmp_path / "a", max_steps=6, seed=5, **options)  # 2 epochs
    first = list(batches)
    assert len(first) == 6 and all(b.shape == (4, 3, 28, 28) for b in first)
    assert len({b.numpy().tobytes() for b in first}) == 6  # every batch, both epochs, new crops

    batches.clear()
    pixelforge.train_gan(f"folder:{folder}", tmp_path / "b", max_steps=6, seed=5, **options)
    assert all(torch.equal(x, y) for x, y in zip(first, batches))  # the same seed: the same crops

    batches.clear()
    pixelforge.train_gan(f"folder:{folder}", tmp_path / "c", max_steps=4, seed=5, **options)
    pixelforge.train_gan(None, tmp_path / "c", resume=True, max_steps=6, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(first, batches))  # a resume draws the same crops
    with pytest.raises(PixelforgeError, match="random_crops=False"):
        pixelforge.train_gan(None, tmp_path / "c", resume=True, max_steps=7, random_crops=False, progress=False)


def _mixed_folder(path):
    """Sizes from 30 to 80 px and the modes a photo folder mixes: L, LA, RGBA, P (with and
    without transparency), 16-bit grayscale, CMYK JPEG."""
    path.mkdir()
    rgb = _photo(0, (80, 60))
    rgb.save(path / "rgb.png")
    rgb.convert("L").resize((40, 50)).save(path / "gray.png")
    rgb.convert("LA").resize((60, 30)).save(path / "gray_alpha.png")
    rgb.convert("RGBA").resize((30, 45)).save(path / "rgba.png")
    rgb.convert("P").resize((64, 64)).save(path / "palette.png")
    rgb.convert("P").save(path / "palette_transparent.png", transparency=0)
    Image.fromarray((np.arange(40 * 36, dtype=np.uint16).reshape(36, 40) * 40)).save(path / "deep.png")
    rgb.convert("CMYK").save(path / "cmyk.jpg")
    return path


@pytest.mark.parametrize("random_crops", [False, True])
def test_gan_trains_on_a_folder_of_mixed_sizes_and_modes(tmp_path, random_crops):
    folder = _mixed_folder(tmp_path / "mixed")
    pipe = pixelforge.train_gan(f"folder:{folder}", tmp_path / "run", max_steps=1, seed=0, channels=3,
                                random_crops=random_crops, **{**TINY, "size": 28, "batch_size": 4})
    assert pipe.sample(2).shape == (2, 3, 28, 28)


def test_gan_folder_bad_input_is_one_line(tmp_path, capsys):
    folder = _folder(tmp_path / "photos")
    code, _, err = run_cli(capsys, "train", "gan", "--data", f"folder:{folder}", "--size", "48",
                           "--max-steps", "1", "--run", str(tmp_path / "r48"))
    assert_clean_error(code, err, "GAN image size 48 is not supported; use --size 28 or 32 or 64")
    assert not (tmp_path / "r48").exists()
    code, _, err = run_cli(capsys, "train", "gan", "--data", f"folder:{folder}", "--size", "32", "--random-crops",
                           "--max-steps", "1", "--run", str(tmp_path / "r32"))
    assert_clean_error(code, err, "is 40x30 px, smaller than the 32 px random crops")
    code, _, err = run_cli(capsys, "train", "gan", "--data", "digits", "--size", "28", "--random-crops",
                           "--max-steps", "1", "--run", str(tmp_path / "rd"))
    assert_clean_error(code, err, "random crops are for folders of photos (--data folder:PATH), not digits")
