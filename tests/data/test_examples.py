"""``pixelforge examples``: the images the README's quick tour works on."""

from __future__ import annotations

import numpy as np
from PIL import Image

import pixelforge
from pixelforge.cli import main
from pixelforge.data import load_dataset
from pixelforge.data.examples import FASHION_FILES


def test_examples_command_writes_the_quick_tours_images(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIXELFORGE_DATA", str(shared_data))
    out = tmp_path / "examples"
    assert main(["examples", "-o", str(out), "--no-download"]) == 0
    printed = capsys.readouterr().out
    assert "14 images" in printed and str(out / "fashion" / "shirt.png") in printed

    test_set = load_dataset("fashion-mnist", split="test", limit=1000)
    for label, name in enumerate(FASHION_FILES):
        image = Image.open(out / "fashion" / f"{name}.png")
        assert image.mode == "L" and image.size == (28, 28)
        first = test_set.images[int((test_set.labels == label).nonzero()[0])].squeeze(0).numpy()
        assert np.array_equal(np.asarray(image), first), name  # the first test image of its class
    for name in ("temple", "flower"):
        photo = Image.open(out / "photos" / f"{name}.png")
        assert photo.mode == "RGB" and photo.size == (640, 427)
    for name in ("glass", "waves"):
        style = np.asarray(Image.open(out / "styles" / f"{name}.png"))
        assert style.shape == (256, 256, 3) and style.std() > 30  # a picture, not a flat colour
    credits = (out / "CREDITS.txt").read_text()
    assert "Creative Commons Attribution 2.0" in credits and "Fashion-MNIST" in credits


def test_examples_are_the_same_every_time_and_work_without_fashion_mnist(tmp_path):
    first = pixelforge.write_examples(tmp_path / "a", download=False)  # no data folder here: no Fashion-MNIST
    second = pixelforge.write_examples(tmp_path / "b", fashion=False)
    names = sorted(str(p.relative_to(tmp_path / "a")) for p in first)
    assert names == ["CREDITS.txt", "photos/flower.png", "photos/temple.png", "styles/glass.png", "styles/waves.png"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_examples_refuses_a_file_as_folder(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert main(["examples", "-o", str(tmp_path / "taken")]) == 2
    assert "is not a folder" in capsys.readouterr().err
