"""Shared fixtures: tiny GAN runs on scikit-learn's bundled digits (no data files needed)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import pixelforge
from pixelforge.data.registry import data_roots

TINY = dict(size=28, width=8, latent_dim=16, batch_size=32, precision="auto", progress=False)


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    # Never touch the user's cache or their download sources; local test servers bypass proxies.
    for variable in ("PIXELFORGE_DATA_MIRROR", "PIXELFORGE_INCEPTION_WEIGHTS", "PIXELFORGE_WEIGHTS_MIRROR",
                     "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PIXELFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The PIXELFORGE_DATA entry (the variable may list several) that holds the test data."""
    for root in data_roots():
        if (root / "fashion-mnist").is_dir():
            return root
    pytest.skip("PIXELFORGE_DATA with fashion-mnist/ not available")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """An unconditional GAN trained for a few steps on digits."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    pixelforge.train_gan("digits", run, max_steps=6, conditional=False, clusters=0, seed=0, **TINY)
    return run


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny-cond"
    pixelforge.train_gan("digits", run, max_steps=4, conditional=True, loss="hinge", seed=1, **TINY)
    return run


class _RecordingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture
def http_server(tmp_path):
    """A 127.0.0.1 HTTP server: yields (served folder, base URL, list of requested paths, stop())."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_RecordingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stopped = False

    def stop():
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()
            thread.join()

    try:
        yield root, f"http://127.0.0.1:{server.server_port}", requests, stop
    finally:
        stop()
