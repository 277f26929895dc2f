"""Example images to try the commands on: :func:`write_examples` (``pixelforge examples -o DIR``).

A newcomer has no photos, paintings or Fashion-MNIST images at hand; this writes a few,
from sources every installation has or can fetch:

- ``DIR/fashion/``: the first Fashion-MNIST *test* image of each class, 28x28 gray
  (``tshirt.png``, ``trouser.png``, ..., ``shirt.png``, ``sneaker.png``, ``bag.png``,
  ``boot.png``), taken through the dataset registry (found locally or downloaded like
  ``pixelforge train --data fashion-mnist`` does; MIT licence);
- ``DIR/photos/``: ``temple.png`` and ``flower.png``, the two colour photographs that ship
  inside scikit-learn (a dependency; its ``china.jpg`` and ``flower.jpg``, 640x427,
  CC BY 2.0: credit in ``CREDITS.txt``);
- ``DIR/styles/``: ``glass.png`` (a stained-glass mosaic) and ``waves.png`` (bands of
  colour), 256x256 pictures drawn here from a fixed seed, to use as styles or textures;
- ``DIR/CREDITS.txt``: where each image comes from and its licence.

Nothing is random between runs: the same files come out on every machine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from ..imageio import write_image
from .load import load_dataset

log = logging.getLogger("pixelforge.data")

# File names of the Fashion-MNIST classes, in label order.
FASHION_FILES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
# scikit-learn's bundled photos: (its file, our name).
SKLEARN_PHOTOS = (("china.jpg", "temple"), ("flower.jpg", "flower"))
STYLE_SIZE = 256

CREDITS = """\
Example images written by `pixelforge examples`.

fashion/*.png  The first image of each class in the Fashion-MNIST test set
               (Xiao, Rasul & Vollgraf 2017, Zalando Research), MIT licence.
               https://github.com/zalandoresearch/fashion-mnist
photos/temple.png, photos/flower.png
               scikit-learn's sample images china.jpg and flower.jpg, converted to PNG.
               Released under Creative Commons Attribution 2.0
               (https://creativecommons.org/licenses/by/2.0/); photographers as credited
               in scikit-learn's sklearn/datasets/images/README.txt:
               https://www.flickr.com/photos/danielbuechele/6061409035 (china.jpg) and
               https://www.flickr.com/photos/vultilion/6056698931 (flower.jpg).
styles/glass.png, styles/waves.png
               Drawn by pixelforge (pixelforge.data.examples) from a fixed seed; no rights reserved.
"""

_GLASS_PALETTE = np.array([  # jewel tones of coloured glass
    (178, 34, 52), (220, 120, 30), (240, 190, 40), (40, 120, 70), (30, 90, 160),
    (70, 50, 140), (150, 40, 110), (60, 160, 170), (200, 70, 60), (110, 170, 60),
], dtype=np.float32)


def stained_glass(size: int = STYLE_SIZE, cells: int = 48, seed: int = 0) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 mosaic: Voronoi cells of coloured glass, lighter near their
    centres, with dark lead lines between them."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (cells, 2)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    distance = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    cell = distance.argmin(-1)
    nearest = np.sqrt(distance.min(-1))
    colours = _GLASS_PALETTE[rng.integers(0, len(_GLASS_PALETTE), cells)]
    shade = 1.15 - 0.35 * np.clip(nearest / (size / np.sqrt(cells)), 0, 1)
    image = colours[cell] * shade[..., None]
    lead = np.zeros((size, size), bool)
    lead[1:, :] |= cell[1:, :] != cell[:-1, :]
    lead[:, 1:] |= cell[:, 1:] != cell[:, :-1]
    lead[:-1, :] |= lead[1:, :].copy()  # two pixels wide
    lead[:, :-1] |= lead[:, 1:].copy()
    image[lead] = (25, 20, 20)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def colour_waves(size: int = STYLE_SIZE) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 picture of wavy bands whose colour cycles through the hues."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    phase = 5 * xx + 0.6 * np.sin(2 * np.pi * (1.5 * yy + 0.4 * np.sin(3 * np.pi * xx)))
    channels = [0.5 + 0.5 * np.sin(2 * np.pi * phase + offset) for offset in (0.0, 2.1, 4.2)]
    return (np.stack(channels, -1) * 255).round().astype(np.uint8)


def _fashion_examples(download: bool) -> dict[str, np.ndarray]:
    data = load_dataset("fashion-mnist", split="test", limit=1000, download=download)
    found = {}
    for label, name in enumerate(FASHION_FILES):
        hits = (data.labels == label).nonzero()
        if len(hits):
            found[name] = data.images[int(hits[0])].squeeze(0).numpy()
    return found


def _sklearn_photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_image

    return {name: load_sample_image(file) for file, name in SKLEARN_PHOTOS}


def write_examples(directory: str | os.PathLike = "examples", *, fashion: bool = True,
                   download: bool = True) -> list[Path]:
    """Write the example images (see the module's docstring) under ``directory``; returns the
    paths written. Existing files of the same names are replaced (their content is always the
    same). ``fashion=False`` leaves out the Fashion-MNIST images; ``download=False`` uses only
    a local copy of Fashion-MNIST. When Fashion-MNIST cannot be had, its images are left out
    with a warning and the rest is still written."""
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} exists and is not a folder")
    pictures: dict[str, np.ndarray] = {}
    if fashion:
        try:
            pictures.update({f"fashion/{name}.png": array for name, array in _fashion_examples(download).items()})
        except DataError as e:
            log.warning("no Fashion-MNIST examples: %s", e)
    pictures.update({f"photos/{name}.png": array for name, array in _sklearn_photos().items()})
    pictures["styles/glass.png"] = stained_glass()
    pictures["styles/waves.png"] = colour_waves()
    written = [write_image(Image.fromarray(array), root / name) for name, array in pictures.items()]
    credits = root / "CREDITS.txt"
    credits.write_text(CREDITS)
    return [*written, credits]
