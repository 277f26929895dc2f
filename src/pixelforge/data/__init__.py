"""Datasets for pixelforge: named IDX datasets, scikit-learn digits and image folders.

Everything is loaded whole into memory as an :class:`ImageData` (uint8
``(N, C, H, W)`` images plus optional labels) by :func:`load_dataset`; see
:mod:`pixelforge.data.registry` for where named datasets are searched for and
downloaded to, and :data:`pixelforge.data.folder.MAX_IMAGE_PIXELS` for the
decompression-bomb limit, and :mod:`pixelforge.data.splits` for the validation split
carved from every dataset's training data.
"""

from .crops import CropData
from .download import download_file, parse_hash_spec
from .examples import write_examples
from .folder import load_folder, load_image
from .idx import encode_idx, parse_idx, read_idx
from .imagedata import ImageData
from .load import load_dataset
from .registry import (DATASETS, FileHashes, IDXSpec, cache_dir, find_dataset, list_datasets,
                       register_dataset, search_path)
from .splits import SPLITS, report_split
from .transforms import convert_channels, resize_images, to_float, to_uint8

__all__ = [
    "CropData", "DATASETS", "FileHashes", "IDXSpec", "ImageData", "SPLITS",
    "cache_dir", "convert_channels", "download_file", "encode_idx", "find_dataset",
    "list_datasets", "load_dataset", "load_folder", "load_image", "parse_hash_spec", "parse_idx",
    "read_idx", "register_dataset", "report_split", "resize_images", "search_path", "to_float", "to_uint8", "write_examples",
]
