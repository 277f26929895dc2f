"""Validation splits: carved from the training data, disjoint from what trains, the same on every
call, machine and seed, and for folders stable when files are added."""

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.data import load_dataset
from pixelforge.data import splits
from pixelforge.errors import DataError


def _val_mask(n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[splits.carve(n, "val", "test")] = True
    return mask


def test_digits_train_and_val_partition_the_old_training_set():
    full = load_dataset("digits", split="train+val")
    train, val = load_dataset("digits"), load_dataset("digits", split="val")
    mask = torch.from_numpy(_val_mask(len(full)))
    assert int(mask.sum()) == len(val) == 120 and len(train) == len(full) - 120
    # Disjoint by position, in the published order, and together the whole training set.
    assert torch.equal(full.images[mask], val.images) and torch.equal(full.labels[mask], val.labels)
    assert torch.equal(full.images[~mask], train.images) and torch.equal(full.labels[~mask], train.labels)
    assert len(set(val.labels.tolist())) == 10  # a random draw, not the first or last images


def test_the_split_is_fixed_not_drawn_from_the_seed(monkeypatch):
    first = load_dataset("digits", split="val")
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        splits._val_mask.cache_clear()  # recomputed, not remembered
        again = load_dataset("digits", split="val")
        assert torch.equal(first.images, again.images)
    # The same on every machine and release: a hash of the index, not a random generator's stream.
    assert splits.carve(1437, "val", "digits")[:6].tolist() == [4, 18, 56, 58, 66, 91]
    assert len(splits.carve(60000, "val", "fashion-mnist")) == 5000


def test_a_class_selector_keeps_its_share_of_the_split():
    val = load_dataset("digits", split="val")
    threes = load_dataset("digits:3", split="val")
    assert torch.equal(threes.images, val.images[val.labels == 3])
    assert len(threes) + len(load_dataset("digits:3")) == len(load_dataset("digits:3", split="train+val"))


def test_fashion_mnist_validation_split(shared_data, monkeypatch):
    monkeypatch.setenv("PIXELFORGE_DATA", str(shared_data))
    full = load_dataset("fashion-mnist", split="train+val", download=False)
    val = load_dataset("fashion-mnist", split="val", limit=100, download=False)
    mask = torch.from_numpy(_val_mask(60000))
    assert torch.equal(full.images[mask][:100], val.images)
    assert len(load_dataset("fashion-mnist:7,9", download=False)) + len(
        load_dataset("fashion-mnist:7,9", split="val", download=False)) == 12000


def test_unknown_and_impossible_splits(tiny, tmp_path, monkeypatch):
    tiny.register()
    tiny.write(tmp_path / "mine" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    assert len(load_dataset("tiny", split="val")) == 1 and len(load_dataset("tiny")) == 11  # 12 / 12
    with pytest.raises(DataError, match="no split 'validation'"):
        load_dataset("tiny", split="validation")
    # Five training images cannot spare one: they all train, and asking for validation is an error.
    assert splits.carve(5, "train", "five") is None
    with pytest.raises(DataError, match=r"^five \(5 training images\) is too small for a validation split") as info:
        splits.carve(5, "val", "five")
    assert "\n" not in str(info.value)


def _folder(root, names):
    """One flat 4x4 image per name, its grey level the name's number, so that images identify files."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("L", (4, 4), int(name.split(".")[0])).save(root / name)
    return root


def _levels(data) -> set[int]:
    return {int(v) for v in data.images[:, 0, 0, 0]}


def test_folder_split_is_stable_when_files_are_added(tmp_path):
    root = _folder(tmp_path / "pics", [f"{i}.png" for i in range(60)])
    spec = f"folder:{root}"
    train, val = load_dataset(spec, size=4, channels=1), load_dataset(spec, size=4, channels=1, split="val")
    assert _levels(train).isdisjoint(_levels(val)) and _levels(train) | _levels(val) == set(range(60))
    assert 1 <= len(val) <= 15 and (train.split, val.split) == ("train", "val")
    assert len(load_dataset(spec, size=4, channels=1, split="train+val")) == 60

    _folder(root, [f"{i}.png" for i in range(60, 120)])
    train2, val2 = load_dataset(spec, size=4, channels=1), load_dataset(spec, size=4, channels=1, split="val")
    assert _levels(val) <= _levels(val2) and _levels(train) <= _levels(train2)  # no file changed sides
    assert _levels(train2).isdisjoint(_levels(val2)) and len(val2) > len(val)


def test_small_folders_have_no_validation_split(tmp_path):
    root = _folder(tmp_path / "few", [f"{i}.png" for i in range(5)])
    assert len(load_dataset(f"folder:{root}", size=4)) == 5  # all of it trains
    with pytest.raises(DataError, match=r"few \(5 files, \d held out; .*\) is too small for a validation split"):
        load_dataset(f"folder:{root}", size=4, split="val")
    with pytest.raises(DataError, match="folder datasets have no test split.*split='val'"):
        load_dataset(f"folder:{root}", size=4, split="test")
