"""The codec's training photos: $PIXELFORGE_DATA/photos minus the held-out benchmark photos,
plus scikit-image's colour photos, gathered (as PNG links/copies) into runs/codec-photos-train.

    python benchmarks/codec_data.py            # then: pixelforge train codec --data folder:runs/codec-photos-train
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The same held-out photos as the super-resolution benchmark: never seen in training.
HELD_OUT = ("dune", "garden", "grey", "raindrops")
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket",
                  "immunohistochemistry", "hubble_deep_field")


def photos_dir() -> Path:
    root = os.environ.get("PIXELFORGE_DATA")
    if not root or not (Path(root) / "photos").is_dir():
        sys.exit("set PIXELFORGE_DATA to the folder holding photos/")
    return Path(root) / "photos"


def prepare(folder: Path = ROOT / "runs" / "codec-photos-train") -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for photo in sorted(photos_dir().glob("*.png")):
        if photo.stem not in HELD_OUT and not (folder / photo.name).exists():
            (folder / photo.name).symlink_to(photo)
    try:
        import skimage.data
    except ImportError:
        print("scikit-image is not installed: training on the shared photos only")
        return folder
    for name in SKIMAGE_PHOTOS:
        dest = folder / f"skimage_{name}.png"
        if not dest.exists():
            arr = np.asarray(getattr(skimage.data, name)())
            if arr.ndim == 3 and arr.shape[2] == 3:
                Image.fromarray(arr).save(dest)
    return folder


if __name__ == "__main__":
    print(prepare())
