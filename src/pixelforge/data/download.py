"""Verified downloads and hash specifications.

A hash specification is ``"algo:hexdigest"`` with ``algo`` one of
:data:`HASH_ALGORITHMS`. :func:`download_file` streams a URL into a temporary
file next to the destination, checks the hash and only then moves the file into
place, so an interrupted or corrupt download never leaves a file that looks
valid.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from ..errors import DataError

log = logging.getLogger("pixelforge.data")

HASH_ALGORITHMS = ("sha256", "md5")
DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a download is abandoned
CHUNK_SIZE = 1 << 16


def parse_hash_spec(spec: str, *, allow_prefix: bool = False) -> tuple[str, str]:
    """Split ``"algo:hex"`` into ``(algo, hex)``, validating both parts.

    With ``allow_prefix=True`` the hex part may also be a prefix of the digest of at least 8
    digits (torch hub's convention of naming weight files after their SHA-256 prefix).
    """
    algo, sep, digest = spec.partition(":")
    algo, digest = algo.strip().lower(), digest.strip().lower()
    if not sep or algo not in HASH_ALGORITHMS:
        raise ValueError(f"hash spec {spec!r} must look like 'sha256:<hex>' or 'md5:<hex>'")
    expected_length = hashlib.new(algo).digest_size * 2
    length_ok = 8 <= len(digest) <= expected_length if allow_prefix else len(digest) == expected_length
    if not length_ok or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"hash spec {spec!r} needs {expected_length} hex digits for {algo}")
    return algo, digest


def check_hash(data: bytes, spec: str, *, name: str) -> None:
    """Raise :class:`DataError` unless ``data`` matches the hash spec."""
    algo, expected = parse_hash_spec(spec)
    actual = hashlib.new(algo, data).hexdigest()
    if actual != expected:
        raise DataError(f"{name} is corrupt or not the expected file: {algo} is {actual}, expected {expected}")


def _gunzipped_digest(path: Path, algo: str) -> str:
    digest = hashlib.new(algo)
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"downloaded file is not valid gzip: {exc}") from exc
    return digest.hexdigest()


def download_file(url: str, dest: Path, hash_spec: str, *, desc: str | None = None, gunzip: bool = False,
                  allow_prefix: bool = False) -> Path:
    """Download ``url`` to ``dest`` if its hash matches ``hash_spec``; return ``dest``.

    With ``gunzip=True`` the hash is of the gzip-decompressed content instead of
    the downloaded bytes (useful when mirrors recompress files). Network errors
    and hash mismatches raise :class:`DataError`; the destination is then left
    untouched and no temporary file remains. ``allow_prefix=True`` accepts a hash spec that gives
    only the first (8 or more) hex digits of the digest, as torch hub does.
    """
    algo, expected = parse_hash_spec(hash_spec, allow_prefix=allow_prefix)
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DataError(f"cannot write to download folder {dest.parent}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(algo)
        log.info("downloading %s to %s", url, dest)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total and total.isdigit() else None, desc=desc or dest.name,
                      unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=None) as bar:
                while chunk := response.read(CHUNK_SIZE):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        actual = _gunzipped_digest(tmp, algo) if gunzip else digest.hexdigest()
        if not actual.startswith(expected) or len(expected) < 8:
            what = "decompressed content" if gunzip else "file"
            raise DataError(f"download of {url} failed verification: {what} {algo} is {actual}, expected {expected}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # URLError: refused connections and HTTP errors; OSError: timeouts and
        # disk problems; ValueError: malformed URLs.
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # an HTTPError holds the open response
            reason = exc
        else:
            reason = getattr(exc, "reason", exc)
        raise DataError(f"download of {url} failed: {' '.join(str(reason).split())}") from exc
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after a successful os.replace
    return dest
