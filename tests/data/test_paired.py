"""Paired folders, built-in pairings and unpaired domains for image-to-image translation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.data.paired import (Pairing, load_domain, load_pairs, luma, make_input, match_pairs, random_crops,
                                    sobel_edges)
from pixelforge.errors import DataError


def _png(path, w=20, h=16, value=None, mode="RGB"):
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    arr = np.full(shape, value, np.uint8) if value is not None else rng.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)
    return path


def test_pairs_match_by_file_stem(tmp_path, caplog):
    _png(tmp_path / "A" / "cat.png")
    _png(tmp_path / "B" / "cat.jpg")
    _png(tmp_path / "A" / "dog.png")
    _png(tmp_path / "B" / "dog.bmp")
    _png(tmp_path / "A" / "lonely.png")
    pairs = match_pairs(tmp_path / "A", tmp_path / "B")
    assert [(a.name, b.name) for a, b in pairs] == [("cat.png", "cat.jpg"), ("dog.png", "dog.bmp")]
    assert "no partner" in caplog.text


def test_load_pairs_concatenates_channels(tmp_path):
    _png(tmp_path / "A" / "x.png", value=10, mode="L")
    _png(tmp_path / "B" / "x.png", value=200)
    data, ca = load_pairs(tmp_path / "A", tmp_path / "B", size=8, channels_a=1, channels_b=3)
    assert ca == 1 and data.images.shape == (1, 4, 8, 8)
    assert data.images[0, 0].eq(10).all() and data.images[0, 1:].eq(200).all()


def test_no_matching_pairs_is_a_clear_error(tmp_path):
    _png(tmp_path / "A" / "one.png")
    _png(tmp_path / "B" / "two.png")
    with pytest.raises(DataError, match="no matching pairs.*one.png.*two.png"):
        match_pairs(tmp_path / "A", tmp_path / "B")


def test_pairs_of_different_sizes_are_refused(tmp_path):
    _png(tmp_path / "A" / "x.png", w=20, h=16)
    _png(tmp_path / "B" / "x.png", w=40, h=32)
    with pytest.raises(DataError, match="'x' has images of different sizes.*20x16.*40x32"):
        match_pairs(tmp_path / "A", tmp_path / "B")


def test_empty_or_missing_folders(tmp_path):
    (tmp_path / "A").mkdir()
    _png(tmp_path / "B" / "x.png")
    with pytest.raises(DataError, match="no images in"):
        match_pairs(tmp_path / "A", tmp_path / "B")
    with pytest.raises(DataError, match="does not exist"):
        match_pairs(tmp_path / "nope", tmp_path / "B")
    with pytest.raises(DataError, match=r"domain B \(folder:.*\): no readable images"):
        load_domain(f"folder:{tmp_path / 'A'}", "B", size=8, channels=None)


def test_domain_with_class_selector():
    d = load_domain("digits:3", "A", size=None, channels=None)
    assert len(d) > 0 and set(d.labels.tolist()) == {3}


def test_pairing_parse():
    assert Pairing.parse("gray").input_channels(3) == 1
    assert Pairing.parse("blur").input_channels(3) == 3
    p = Pairing.parse("folder:some/where")
    assert p.kind == "folder" and p.path == "some/where"
    with pytest.raises(DataError, match="unknown pairing"):
        Pairing.parse("sepia")
    with pytest.raises(DataError, match="needs a path"):
        Pairing.parse("folder:")


def test_builtin_pairings():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    gray = make_input("gray", target)
    assert gray.shape == (2, 1, 32, 32)
    assert torch.allclose(gray, luma((target + 1) / 2) * 2 - 1, atol=1e-6)
    for kind in ("blur", "lowres"):
        out = make_input(kind, target)
        assert out.shape == target.shape and out.min() >= -1 and out.max() <= 1
        assert out.std() < 0.6 * target.std()  # detail removed
    # Edges: flat regions are white, a vertical step gives a dark line at the step.
    step = -torch.ones(1, 3, 32, 32)
    step[..., 16:] = 1
    edges = make_input("edges", step)
    assert edges.shape == (1, 1, 32, 32)
    assert edges[0, 0, :, :8].min() > 0.999 and edges[0, 0, :, 24:].min() > 0.999
    assert edges[0, 0, :, 15:17].max() < -0.5
    assert sobel_edges(torch.full((1, 1, 8, 8), 0.3)).max() < 1e-6


def test_random_crops_shapes():
    imgs = torch.arange(2 * 3 * 10 * 12, dtype=torch.float32).view(2, 3, 10, 12)
    crops = random_crops(imgs, 6)
    assert crops.shape == (2, 3, 6, 6)
    assert random_crops(imgs, 64).shape == imgs.shape  # larger than the images: whole images
