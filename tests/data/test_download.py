"""Downloads against a local HTTP server: verification, atomicity and failure messages."""

import gzip
import hashlib
import socket

import pytest

from pixelforge.data import download_file, encode_idx, load_dataset
from pixelforge.errors import DataError


def _refused_url() -> str:
    """A 127.0.0.1 URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_file_verifies_and_moves_into_place(http_server, tmp_path):
    root, base, _, _ = http_server
    (root / "blob.bin").write_bytes(b"pixel" * 1000)
    dest = tmp_path / "out" / "blob.bin"

    result = download_file(f"{base}/blob.bin", dest, "md5:" + hashlib.md5(b"pixel" * 1000).hexdigest())

    assert result == dest and dest.read_bytes() == b"pixel" * 1000
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_download_file_hash_mismatch_leaves_nothing(http_server, tmp_path):
    root, base, _, _ = http_server
    (root / "blob.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "blob.bin"

    with pytest.raises(DataError, match="failed verification"):
        download_file(f"{base}/blob.bin", dest, "sha256:" + "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_download_file_http_error(http_server, tmp_path):
    _, base, _, _ = http_server
    with pytest.raises(DataError, match="404"):
        download_file(f"{base}/missing.gz", tmp_path / "missing.gz", "md5:" + "0" * 32)
    assert list(tmp_path.glob("*missing*")) == []


@pytest.mark.parametrize("hash_kind", ["content", "gz"])
def test_load_dataset_downloads_verifies_and_loads(tiny, http_server, tmp_path, monkeypatch, hash_kind):
    root, base, requests, _ = http_server
    tiny.write(root / "tiny")
    tiny.register(urls=[f"{base}/tiny/"], hash_kind=hash_kind)
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "empty"))

    data = load_dataset("tiny", split="test")

    assert len(requests) == 4
    assert data.images.shape == (6, 1, 5, 5)
    assert data.images[:, 0].numpy().tolist() == tiny.arrays["t10k-images-idx3-ubyte"].tolist()
    assert data.labels.tolist() == [0, 1, 2, 0, 1, 2] and data.classes == ["a", "b", "c"]
    cached = tmp_path / "cache" / "tiny"
    assert data.source == str(cached)
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{f}.gz" for f in tiny.content)

    load_dataset("tiny")  # now found in the cache: no new requests
    assert len(requests) == 4


def test_mirror_replaces_the_url_list(tiny, http_server, monkeypatch):
    root, base, requests, _ = http_server
    tiny.write(root / "tiny")
    tiny.register(urls=[_refused_url()])
    monkeypatch.setenv("PIXELFORGE_DATA_MIRROR", base + "/")

    assert len(load_dataset("tiny", split="train+val")) == 12
    assert sorted(requests) == sorted(f"/tiny/{f}.gz" for f in tiny.content)


def test_later_urls_are_tried_when_the_first_fails(tiny, http_server):
    root, base, _, _ = http_server
    tiny.write(root / "tiny")
    tiny.register(urls=[_refused_url(), f"{base}/tiny"])
    assert len(load_dataset("tiny", split="train+val")) == 12


@pytest.mark.parametrize("hash_kind", ["content", "gz"])
def test_wrong_hash_raises_and_leaves_no_file(tiny, http_server, tmp_path, hash_kind):
    root, base, _, _ = http_server
    tiny.write(root / "tiny")
    tiny.register(urls=[f"{base}/tiny/"], hash_kind=hash_kind, corrupt_hash=True)

    with pytest.raises(DataError, match="failed verification"):
        load_dataset("tiny")
    cached = tmp_path / "cache" / "tiny"
    assert not cached.exists() or list(cached.iterdir()) == []


def test_unreachable_server_names_the_ways_to_get_the_data(tiny, tmp_path, monkeypatch):
    tiny.register(urls=[_refused_url()])
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "empty"))

    with pytest.raises(DataError) as info:
        load_dataset("tiny")
    message = str(info.value)
    assert "\n" not in message
    assert "tiny not found in" in message and str(tmp_path / "empty" / "tiny") in message
    assert "download failed" in message and "refused" in message.lower()
    assert "PIXELFORGE_DATA/tiny/" in message and "go online" in message


def test_fashion_mnist_message_mentions_the_debian_package(monkeypatch):
    monkeypatch.setenv("PIXELFORGE_DATA_MIRROR", _refused_url())
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_download_false_does_not_touch_the_network(tiny, http_server):
    root, base, requests, _ = http_server
    tiny.write(root / "tiny")
    tiny.register(urls=[f"{base}/tiny/"])
    with pytest.raises(DataError, match="downloads are disabled"):
        load_dataset("tiny", download=False)
    assert requests == []


def test_local_file_with_wrong_content_is_named(tiny, tmp_path, monkeypatch):
    directory = tiny.write(tmp_path / "mine" / "tiny")
    tiny.register()
    tampered = tiny.arrays["train-images-idx3-ubyte"].copy()
    tampered[0, 0, 0] ^= 1
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(tampered)))
    monkeypatch.setenv("PIXELFORGE_DATA", str(tmp_path / "mine"))

    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is corrupt or not the expected file: sha256"):
        load_dataset("tiny")
    assert len(load_dataset("tiny", split="test")) == 6  # the intact split still loads
