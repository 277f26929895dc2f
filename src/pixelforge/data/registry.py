"""Named datasets: what they are, where to look for them and where to get them.

IDX datasets (MNIST-style) are described by an :class:`IDXSpec` in
:data:`DATASETS`. Their files are searched for in ``ROOT/<name>/`` for each ROOT
of :func:`search_path`, in order:

1. every entry of ``$PIXELFORGE_DATA`` (``os.pathsep``-separated),
2. the user cache (:func:`cache_dir`), where downloads go,
3. the system folders in :data:`SYSTEM_DATA_DIRS` (``/usr/share/datasets``).

A file is accepted gzip-compressed (``<file>.gz``) or uncompressed (``<file>``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .download import parse_hash_spec

SYSTEM_DATA_DIRS = [Path("/usr/share/datasets")]

DIGITS_NAME = "digits"
DIGITS_DESCRIPTION = "scikit-learn's 1,797 handwritten digits, 8x8 grayscale, 10 classes"
DIGITS_LOCATION = "scikit-learn (bundled)"


@dataclass(frozen=True)
class FileHashes:
    """Expected hashes ("algo:hex") of one IDX file.

    ``gz_hash`` is the hash of the published ``.gz`` file and is checked on
    download. ``content_hash`` is the hash of the decompressed IDX content; it
    survives recompression, so it is checked on download (when there is no
    ``gz_hash``) and on every load of a local file.
    """

    gz_hash: str | None = None
    content_hash: str | None = None


@dataclass
class IDXSpec:
    """A named dataset made of IDX files.

    ``files`` maps a split ("train", "test") to its (images file, labels file)
    names without ``.gz``. ``urls`` are base URLs tried in order; a file is
    downloaded from ``<base>/<file>.gz``. ``hashes`` maps every file name to its
    :class:`FileHashes`; ``classes`` names the labels 0..n-1.
    """

    name: str
    description: str
    files: dict[str, tuple[str, str]]
    urls: list[str]
    hashes: dict[str, FileHashes]
    classes: list[str]
    debian_package: str | None = None

    @property
    def file_names(self) -> list[str]:
        """Every file of every split, without duplicates."""
        return list(dict.fromkeys(name for pair in self.files.values() for name in pair))


FASHION_MNIST = IDXSpec(
    name="fashion-mnist",
    description="Zalando's 70,000 garment images, 28x28 grayscale, 10 classes",
    files={"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")},
    urls=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    hashes={
        "train-images-idx3-ubyte": FileHashes(
            content_hash="sha256:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": FileHashes(
            content_hash="sha256:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": FileHashes(
            content_hash="sha256:5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": FileHashes(
            content_hash="sha256:0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    debian_package="dataset-fashion-mnist",
)

MNIST = IDXSpec(
    name="mnist",
    description="LeCun's 70,000 handwritten digits, 28x28 grayscale, 10 classes",
    files={"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")},
    urls=["https://ossci-datasets.s3.amazonaws.com/mnist/"],
    hashes={
        "train-images-idx3-ubyte": FileHashes(
            gz_hash="md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
            content_hash="sha256:ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte": FileHashes(
            gz_hash="md5:d53e105ee54ea40749a09fcbcd1e9432",
            content_hash="sha256:65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte": FileHashes(
            gz_hash="md5:9fb629c4189551a2d022fa330f9573f3",
            content_hash="sha256:0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte": FileHashes(
            gz_hash="md5:ec29112dd5afa0611ce80d1b7f02629c",
            content_hash="sha256:ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    classes=[str(digit) for digit in range(10)],
)

DATASETS: dict[str, IDXSpec] = {}


def register_dataset(spec: IDXSpec, *, replace: bool = False) -> IDXSpec:
    """Add ``spec`` to :data:`DATASETS` after checking it is complete; return it."""
    if not spec.name or ":" in spec.name or "/" in spec.name or spec.name in (DIGITS_NAME, "folder"):
        raise ValueError(f"invalid dataset name {spec.name!r}")
    if spec.name in DATASETS and not replace:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    if not spec.files or not spec.classes:
        raise ValueError(f"dataset {spec.name!r} needs files and classes")
    for file_name in spec.file_names:
        hashes = spec.hashes.get(file_name)
        if hashes is None or not (hashes.gz_hash or hashes.content_hash):
            raise ValueError(f"dataset {spec.name!r} has no hash for {file_name}")
        for hash_spec in (hashes.gz_hash, hashes.content_hash):
            if hash_spec is not None:
                parse_hash_spec(hash_spec)
    DATASETS[spec.name] = spec
    return spec


register_dataset(FASHION_MNIST)
register_dataset(MNIST)


def known_names() -> list[str]:
    """Every name :func:`~pixelforge.data.load_dataset` accepts, plus the folder form."""
    return [*sorted([*DATASETS, DIGITS_NAME]), "folder:PATH"]


def get_spec(name: str) -> IDXSpec:
    """The registered :class:`IDXSpec` called ``name``; :class:`DataError` if there is none."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(known_names())}") from None


def cache_dir() -> Path:
    """``$PIXELFORGE_CACHE``, else ``$XDG_CACHE_HOME/pixelforge``, else ``~/.cache/pixelforge``."""
    if override := os.environ.get("PIXELFORGE_CACHE"):
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "pixelforge"


def data_roots() -> list[Path]:
    """The folders listed in ``$PIXELFORGE_DATA`` (``os.pathsep``-separated), in order."""
    return [Path(entry).expanduser() for entry in os.environ.get("PIXELFORGE_DATA", "").split(os.pathsep) if entry]


def search_path() -> list[Path]:
    """The roots searched for named datasets, in order (see the module docstring)."""
    return [*data_roots(), cache_dir(), *SYSTEM_DATA_DIRS]


def locate_file(directory: Path, file_name: str) -> Path | None:
    """``directory/file_name`` uncompressed or as ``.gz`` (uncompressed preferred), or None."""
    for candidate in (directory / file_name, directory / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_dataset(name: str) -> Path | None:
    """The first ``ROOT/<name>/`` on the search path holding all of the dataset's files, or None."""
    spec = get_spec(name)
    for root in search_path():
        directory = root / spec.name
        if all(locate_file(directory, file_name) for file_name in spec.file_names):
            return directory
    return None


def list_datasets() -> list[dict]:
    """One dict per named dataset: ``name``, ``description``, ``location`` and ``url``.

    ``location`` is the folder where the files were found, "scikit-learn
    (bundled)", or None when the dataset is not available locally and will be
    downloaded from ``url`` on first use.
    """
    entries = []
    for spec in DATASETS.values():
        found = find_dataset(spec.name)
        entries.append({"name": spec.name, "description": spec.description,
                        "location": str(found) if found else None, "url": spec.urls[0] if spec.urls else None})
    entries.append({"name": DIGITS_NAME, "description": DIGITS_DESCRIPTION, "location": DIGITS_LOCATION, "url": None})
    return entries
