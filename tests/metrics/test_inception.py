"""The FID Inception network: architecture, weight download, caching and safe loading."""

import hashlib
import os
import socket

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.metrics import InceptionV3FID, extract, load_inception
from pixelforge.metrics.inception import INCEPTION_FILE_NAME, INCEPTION_HASH_SPEC


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised InceptionV3FID's state dict on disk: (path, matching hash spec, state dict)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = InceptionV3FID().state_dict()
    path = tmp_path_factory.mktemp("weights") / INCEPTION_FILE_NAME
    torch.save(state, path)
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), state


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _cached_file(tmp_path):
    return tmp_path / "cache" / "weights" / INCEPTION_FILE_NAME


def test_architecture_matches_the_published_checkpoint_layout():
    state = InceptionV3FID().state_dict()
    assert len(state) == 566  # the entry count of pt_inception-2015-12-05-6726825d.pth
    assert state["fc.weight"].shape == (1008, 2048)
    assert INCEPTION_HASH_SPEC.startswith("sha256:" + INCEPTION_FILE_NAME.rsplit("-", 1)[1][:8])


def test_features_and_logits_of_small_grayscale_images():
    net = InceptionV3FID()
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features, logits = extract(net, images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()


def test_downloads_once_then_loads_from_the_cache(weights, http_server, tmp_path, monkeypatch):
    path, spec, state = weights
    root, base, requests, stop = http_server
    (root / INCEPTION_FILE_NAME).write_bytes(path.read_bytes())
    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", base + "/")

    model = load_inception(hash_spec=spec)

    assert requests == [f"/{INCEPTION_FILE_NAME}"]
    assert _cached_file(tmp_path).read_bytes() == path.read_bytes()
    torch.testing.assert_close(model.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    assert not model.training

    stop()
    again = load_inception(hash_spec=spec)
    assert requests == [f"/{INCEPTION_FILE_NAME}"]
    torch.testing.assert_close(again.fc.bias, state["fc.bias"])


def test_a_download_with_the_wrong_hash_is_refused(weights, http_server, tmp_path, monkeypatch):
    path, _, _ = weights
    root, base, _, _ = http_server
    (root / INCEPTION_FILE_NAME).write_bytes(path.read_bytes())
    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", base)

    with pytest.raises(PixelforgeError, match="failed verification") as excinfo:
        load_inception(hash_spec="sha256:" + "0" * 64)
    assert "\n" not in str(excinfo.value)
    assert not _cached_file(tmp_path).exists()


def test_offline_without_weights_names_the_options(monkeypatch):
    with pytest.raises(PixelforgeError, match="PIXELFORGE_INCEPTION_WEIGHTS") as excinfo:
        load_inception(download=False)
    assert "\n" not in str(excinfo.value)

    monkeypatch.setenv("PIXELFORGE_WEIGHTS_MIRROR", _refused_url())
    with pytest.raises(PixelforgeError, match="failed.*PIXELFORGE_INCEPTION_WEIGHTS") as excinfo:
        load_inception()
    assert "\n" not in str(excinfo.value)


def test_explicit_path_and_environment_variable(weights, monkeypatch, tmp_path):
    path, _, state = weights
    torch.testing.assert_close(load_inception(path, download=False).fc.bias, state["fc.bias"])
    monkeypatch.setenv("PIXELFORGE_INCEPTION_WEIGHTS", str(path))
    torch.testing.assert_close(load_inception(download=False).fc.bias, state["fc.bias"])
    with pytest.raises(PixelforgeError, match="not found at .*missing.pth"):
        load_inception(tmp_path / "missing.pth")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pth"
    torch.save({"fc.weight": _RunsCode(marker)}, evil)

    with pytest.raises(PixelforgeError, match="refusing to load") as excinfo:
        load_inception(evil)
    assert "\n" not in str(excinfo.value)
    assert not marker.exists()


def test_a_state_dict_of_another_network_is_refused(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048), "conv.weight": torch.zeros(3)}, other)
    with pytest.raises(PixelforgeError, match="not an FID Inception-v3 state dict: .*missing keys.*unexpected keys"
                                              ".*shape mismatches") as excinfo:
        load_inception(other)
    assert "\n" not in str(excinfo.value)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PixelforgeError, match="refusing to load|cannot read Inception weights"):
        load_inception(garbage)
