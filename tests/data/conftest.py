"""Fixtures for the data-layer tests.

Every test runs with a private cache, no system dataset folders and no data
mirror, so nothing outside tmp_path is read or written and no test can reach
the network by accident. Tests that need the real shared data ask for
``shared_data``; it comes from $PIXELFORGE_DATA as set when pytest started,
else from the repository's sibling ``shared/data`` folder, and the test is
skipped when neither exists.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from pixelforge.data import DATASETS, FileHashes, IDXSpec, encode_idx, register_dataset
from pixelforge.data import registry

_SHARED_DATA = os.environ.get("PIXELFORGE_DATA") or str(Path(__file__).resolve().parents[3] / "shared" / "data")


@pytest.fixture(autouse=True)
def isolated_data_sources(tmp_path, monkeypatch):
    # On top of tests/conftest.py's isolation: no data folder, no system folder, a clean registry.
    monkeypatch.delenv("PIXELFORGE_DATA", raising=False)
    monkeypatch.setattr(registry, "SYSTEM_DATA_DIRS", [tmp_path / "system"])
    saved = dict(DATASETS)
    yield
    DATASETS.clear()
    DATASETS.update(saved)


@pytest.fixture
def shared_data() -> Path:
    """The shared test data folder (the first entry of $PIXELFORGE_DATA)."""
    root = Path(_SHARED_DATA.split(os.pathsep)[0])
    if not (root / "fashion-mnist").is_dir():
        pytest.skip(f"shared test data not found at {root} (set PIXELFORGE_DATA)")
    return root


class TinyIDX:
    """A generated 3-class IDX dataset named "tiny": 12 train and 6 test images of 5x5."""

    name = "tiny"
    classes = ["a", "b", "c"]

    def __init__(self):
        rng = np.random.default_rng(0)
        self.arrays = {}
        for prefix, count in (("train", 12), ("t10k", 6)):
            self.arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (count, 5, 5), dtype=np.uint8)
            self.arrays[f"{prefix}-labels-idx1-ubyte"] = (np.arange(count) % 3).astype(np.uint8)
        self.content = {file: encode_idx(array) for file, array in self.arrays.items()}
        self.gz = {file: gzip.compress(data, mtime=0) for file, data in self.content.items()}

    def write(self, directory: Path, *, compressed: bool = True) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for file in self.content:
            if compressed:
                (directory / f"{file}.gz").write_bytes(self.gz[file])
            else:
                (directory / file).write_bytes(self.content[file])
        return directory

    def register(self, *, urls=(), hash_kind: str = "content", corrupt_hash: bool = False) -> IDXSpec:
        """Register with sha256 hashes of the IDX content ("content") or md5 hashes of the .gz files ("gz")."""
        hashes = {}
        for file in self.content:
            if hash_kind == "content":
                spec = "sha256:" + hashlib.sha256(self.content[file]).hexdigest()
            else:
                spec = "md5:" + hashlib.md5(self.gz[file]).hexdigest()
            if corrupt_hash:
                spec = spec[:-4] + "0000"
            hashes[file] = FileHashes(content_hash=spec) if hash_kind == "content" else FileHashes(gz_hash=spec)
        return register_dataset(IDXSpec(
            name=self.name, description="tiny test dataset",
            files={"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                   "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")},
            urls=list(urls), hashes=hashes, classes=list(self.classes)))


@pytest.fixture
def tiny() -> TinyIDX:
    return TinyIDX()


