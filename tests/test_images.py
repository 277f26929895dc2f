"""Labelled image grids (pixelforge.images.grid_image / save_grid)."""

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.errors import PixelforgeError
from pixelforge.images import grid_image, make_grid, save_grid


def test_labels_sit_on_white_bands_and_leave_the_panels_alone():
    panels = torch.rand(6, 3, 12, 16)
    plain = np.asarray(grid_image(panels, nrow=3, scale=2))
    labelled = grid_image(panels, nrow=3, scale=2, columns=["original", "JPEG 0.52 bpp 31.2 dB", "ours"],
                          rows=["first", "second"])
    arr = np.asarray(labelled)
    band_h, band_w = arr.shape[0] - plain.shape[0], arr.shape[1] - plain.shape[1]
    assert band_h > 0 and band_w > 0
    assert np.array_equal(arr[band_h:, band_w:], plain)
    top, left = arr[:band_h, band_w:], arr[band_h:, :band_w]
    assert (top < 128).any() and (left < 128).any()  # the text is there
    assert (top.reshape(-1, 3) == 255).all(1).mean() > 0.5  # on white
    # a long column label wraps to its column's width: its band is taller than a one-line label's
    one_line = grid_image(panels, nrow=3, scale=2, columns=["a", "b", "c"])
    assert one_line.height - plain.shape[0] < band_h


def test_grayscale_columns_only_and_unlabelled_grid_unchanged(tmp_path):
    panels = torch.zeros(4, 1, 8, 8)
    assert np.array_equal(np.asarray(grid_image(panels, nrow=4)), make_grid(panels, 4))
    path = save_grid(panels, tmp_path / "grid.png", nrow=4, scale=3, columns=["t = 1", "t = 10", "t = 100", "x"])
    image = Image.open(path)
    assert image.mode == "L" and image.width == make_grid(panels, 4).shape[1] * 3 and image.height > 8 * 3 + 6


@pytest.mark.parametrize("labels, message", [(dict(columns=["a", "b"]), "2 column labels for a grid of 3 columns"),
                                             (dict(rows=["a", "b", "c"]), "3 row labels for a grid of 2 rows")])
def test_label_counts_must_match_the_grid(labels, message):
    with pytest.raises(PixelforgeError, match=message):
        grid_image(torch.zeros(5, 3, 4, 4), nrow=3, **labels)
