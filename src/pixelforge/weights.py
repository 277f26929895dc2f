"""External pretrained weights (VGG for style transfer, Inception for FID): one rule for where
they are found and how they are fetched.

A weights file is, in this order: the path the caller gives; the file named by the
variable ``env``; the cache (``cache_dir()/weights/FILE``); or a download into the cache
from ``url`` (or ``$PIXELFORGE_WEIGHTS_MIRROR/FILE``), verified against ``hash_spec``
before it is kept. Every failure is one line that says how to provide the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .data.download import download_file
from .data.registry import cache_dir
from .errors import PixelforgeError

MIRROR_ENV = "PIXELFORGE_WEIGHTS_MIRROR"


@dataclass(frozen=True)
class ExternalWeights:
    """``name``: how messages call the weights; ``argument``: how a caller passes a file;
    ``allow_prefix``: ``hash_spec`` may be a digest prefix (torch hub's 8-digit convention)."""

    name: str
    file: str
    url: str
    hash_spec: str
    env: str
    argument: str = "pass a path"
    allow_prefix: bool = False

    @property
    def cached(self) -> Path:
        return cache_dir() / "weights" / self.file

    def how_to_provide(self) -> str:
        return (f"{self.argument}, set ${self.env}, place {self.file} at {self.cached}, or set ${MIRROR_ENV} "
                f"to a folder URL serving it (file {self.url}, {self.hash_spec}...)")

    def locate(self, path: str | os.PathLike | None = None, download: bool = True,
               hash_spec: str | None = None) -> Path:
        if path is not None:
            return self._existing(path, "the path given")
        if os.environ.get(self.env):
            return self._existing(os.environ[self.env], f"${self.env}")
        if self.cached.is_file():
            return self.cached
        if not download:
            raise PixelforgeError(f"{self.name} weights not found and downloads are off: {self.how_to_provide()}")
        mirror = os.environ.get(MIRROR_ENV)
        url = f"{mirror.rstrip('/')}/{self.file}" if mirror else self.url
        try:
            return download_file(url, self.cached, hash_spec or self.hash_spec, desc=f"{self.name} weights",
                                 allow_prefix=self.allow_prefix)
        except PixelforgeError as exc:
            raise PixelforgeError(f"{self.name} weights unavailable ({exc}); to use them offline, "
                                  f"{self.how_to_provide()}") from exc

    def _existing(self, path, source: str) -> Path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise PixelforgeError(f"{self.name} weights not found at {path} (from {source})")
        return path
