"""load_dataset on named datasets: fashion-mnist (shared data), digits and the tiny IDX dataset."""

import pytest
import torch

from pixelforge.data import ImageData, load_dataset
from pixelforge.errors import DataError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture
def fashion_env(shared_data, monkeypatch):
    monkeypatch.setenv("PIXELFORGE_DATA", str(shared_data))


def test_fashion_mnist_train_and_test(fashion_env, shared_data):
    full = load_dataset("fashion-mnist", split="train+val", download=False)
    assert isinstance(full, ImageData)
    assert full.images.shape == (60000, 1, 28, 28) and full.images.dtype == torch.uint8
    assert full.labels.dtype == torch.int64 and full.labels.shape == (60000,)
    assert full.labels.unique().tolist() == list(range(10))
    assert full.classes == FASHION_CLASSES and full.num_classes == 10
    assert (len(full), full.channels, full.size) == (60000, 1, 28)
    assert full.name == "fashion-mnist" and full.source == str(shared_data / "fashion-mnist")
    assert full.labels[:5].tolist() == [9, 0, 0, 3, 0]  # the published first labels

    # Training leaves the 5,000 validation images out.
    train, val = load_dataset("fashion-mnist", download=False), load_dataset("fashion-mnist", split="val")
    assert (len(train), len(val)) == (55000, 5000) and (train.split, val.split) == ("train", "val")
    assert sorted(val.labels.bincount().tolist())[0] > 400  # a random draw: every class about 500

    test = load_dataset("fashion-mnist", split="test", download=False)
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_fashion_mnist_resized_to_rgb(fashion_env):
    native = load_dataset("fashion-mnist", split="test", limit=500)
    data = load_dataset("fashion-mnist", split="test", size=32, channels=3, limit=500)
    assert data.images.shape == (500, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], data.images[:, 2])  # gray repeated
    # Resizing keeps the overall brightness.
    assert abs(data.images.float().mean() - native.images.float().mean()) < 1.0


def test_fashion_mnist_class_selector(fashion_env):
    data = load_dataset("fashion-mnist:7,9", split="test")
    assert len(data) == 2000 and set(data.labels.tolist()) == {7, 9}
    assert data.classes == FASHION_CLASSES  # labels keep their original ids
    sneakers = load_dataset("fashion-mnist:sneaker", split="test", limit=10)
    assert sneakers.labels.tolist() == [7] * 10


def test_limit_keeps_the_first_images(fashion_env):
    full = load_dataset("fashion-mnist", split="test")
    first = load_dataset("fashion-mnist", split="test", limit=25)
    assert len(first) == 25
    assert torch.equal(first.images, full.images[:25]) and torch.equal(first.labels, full.labels[:25])


def test_digits():
    train = load_dataset("digits")
    test = load_dataset("digits", split="test")
    assert train.images.shape == (1317, 1, 8, 8) and test.images.shape == (360, 1, 8, 8)
    assert len(load_dataset("digits", split="val")) == 120  # 1/12 of the 1,437 training digits
    full = load_dataset("digits", split="train+val")
    assert len(full) == 1437 and full.labels[:10].tolist() == list(range(10))  # scikit-learn's fixed order
    assert train.classes == [str(d) for d in range(10)] and train.source == "scikit-learn"
    assert train.images.max() == 255 and train.images.min() == 0
    assert load_dataset("digits", size=16, channels=3, limit=7).images.shape == (7, 3, 16, 16)
    assert set(load_dataset("digits:3", split="test").labels.tolist()) == {3}


def test_unknown_dataset_lists_the_known_names():
    with pytest.raises(DataError) as info:
        load_dataset("imagenet")
    message = str(info.value)
    for name in ("fashion-mnist", "mnist", "digits", "folder:PATH"):
        assert name in message


@pytest.mark.parametrize("kwargs, pattern", [
    ({"split": "validation"}, "no split 'validation'"),
    ({"size": 0}, "size must be"),
    ({"channels": 2}, "channels must be 1 or 3"),
    ({"limit": 0}, "limit must be"),
])
def test_bad_options(kwargs, pattern, tiny, tmp_path, monkeypatch):
    tiny.register()
    tiny.write(tmp_path / "mine" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    with pytest.raises(DataError, match=pattern):
        load_dataset("tiny", **kwargs)


@pytest.mark.parametrize("selector", ["tiny:3", "tiny:d", "tiny:"])
def test_bad_class_selector(selector, tiny, tmp_path, monkeypatch):
    tiny.register()
    tiny.write(tmp_path / "mine" / "tiny")
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    with pytest.raises(DataError, match="has no class"):
        load_dataset(selector)


def test_uncompressed_local_files_load(tiny, tmp_path, monkeypatch):
    tiny.register()
    tiny.write(tmp_path / "mine" / "tiny", compressed=False)
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))
    data = load_dataset("tiny:1,2", size=10, channels=3, split="train+val")
    assert data.images.shape == (8, 3, 10, 10)
    assert data.labels.tolist() == [1, 2] * 4
