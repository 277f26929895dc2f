"""Studio fixtures: one runs folder with tiny GAN and diffusion runs, the app, a live server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.synthetic import synthetic_photo

pytest.importorskip("starlette", reason="the studio needs the web extra: pip install -e '.[web]'")

import pixelforge  # noqa: E402
from pixelforge.web import Studio, create_app  # noqa: E402

TINY = dict(size=28, width=8, latent_dim=16, batch_size=32, progress=False)


@pytest.fixture(scope="session")
def web_runs(tmp_path_factory) -> Path:
    """runs/gan (conditional, 2 epochs on 256 digits: two epoch sample grids), runs/diffusion,
    runs/ae (a denoising + inpainting autoencoder, trained long enough to beat its noisy input),
    runs/cvae (a conditional VAE), runs/sr (a tiny x2 super-resolution run on synthetic photos) and
    runs/stylizer, runs/adain (tiny style-transfer runs on the same photos)."""
    root = tmp_path_factory.mktemp("studio") / "runs"
    pixelforge.train_gan("digits", root / "gan", epochs=2, limit=256, conditional=True, loss="hinge", seed=0, **TINY)
    pixelforge.train_diffusion("digits", root / "diffusion", size=28, width=8, num_res_blocks=1, max_steps=3,
                               batch_size=32, conditional=True, progress=False)
    pixelforge.train_autoencoder("digits", root / "ae", size=28, width=8, latent_dim=32, batch_size=32, max_steps=100,
                                 corrupt="gaussian:0.2-0.4,box", progress=False)
    pixelforge.train_autoencoder("digits", root / "cvae", variational=True, conditional=True, size=28, width=8,
                                 latent_dim=8, batch_size=32, max_steps=5, progress=False)
    from pixelforge.pipelines.sr import train_sr

    photos = tmp_path_factory.mktemp("photos")
    for i in range(2):
        photo_image(80, 96, seed=i).save(photos / f"p{i}.png")
    train_sr(f"folder:{photos}", root / "sr", size=64, scale=2, model="espcn", width=8, crop=32, max_steps=4,
             batch_size=2, progress=False)
    from pixelforge.pipelines.stylizer import train_adain, train_stylizer

    tiny_style = dict(size=64, crop=32, style_size=48, batch_size=2, max_steps=2, precision="fp32", progress=False)
    train_stylizer(f"folder:{photos}", root / "stylizer", style=photos / "p1.png", widths=(4, 8, 8), blocks=1,
                   **tiny_style)
    train_adain(f"folder:{photos}", root / "adain", styles=str(photos / "p0.png"), widths=(8, 8), refine="r2",
                **tiny_style)
    from pixelforge.apps.scarce_data import write_report

    write_report(study_result(), root / "augment")
    return root


def study_result() -> dict:
    """An augmentation study's report (the form `pixelforge augment` writes) with made-up figures:
    two budgets, one classic and one generative arm."""
    from pixelforge.apps.scarce_data import verdict

    def arm(name, kind, accuracies):
        mean = sum(accuracies) / len(accuracies)
        return {"arm": name, "kind": kind, "steps": 300, "val": {"mean": mean, "std": 0.01, "runs": accuracies},
                "test": {"mean": mean, "std": 0.01, "runs": accuracies}}

    rows = []
    for k, base in ((50, 0.80), (100, 0.84)):
        arms = [arm("flips + shifts", "classic", [base, base + 0.01]),
                arm("flips + shifts + generated 4:1", "generative", [base + 0.03, base + 0.035])]
        rows.append({"per_class": k, "arms": arms, **verdict(arms, k)})
    return {"data": "digits", "budgets": [50, 100], "seeds": [0, 1], "rows": rows}


def photo_image(h: int, w: int, seed: int = 0):
    """A synthetic RGB 'photo' (PIL) of tests.synthetic."""
    import numpy as np
    from PIL import Image

    return Image.fromarray(synthetic_photo(np.random.default_rng(seed), h, w))


@pytest.fixture
def studio(web_runs, tmp_path) -> Studio:
    return Studio(web_runs, tmp_path / "out", device="cpu", busy_timeout=5)


@pytest.fixture
def client(studio):
    from starlette.testclient import TestClient

    with TestClient(create_app(studio)) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(web_runs, tmp_path_factory):
    """The studio on a real uvicorn server on 127.0.0.1 (an ephemeral port); yields its base URL."""
    import uvicorn

    studio = Studio(web_runs, tmp_path_factory.mktemp("studio-out"), device="cpu", busy_timeout=60)
    server = uvicorn.Server(uvicorn.Config(create_app(studio), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            pytest.fail("the studio server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def png_bytes():
    """PNG bytes of a w x h image (a white ring on black, like a digit)."""
    import io

    from PIL import Image, ImageDraw

    def make(w: int = 64, h: int = 64, mode: str = "L") -> bytes:
        im = Image.new(mode, (w, h), 0)
        ImageDraw.Draw(im).ellipse((w // 4, h // 8, 3 * w // 4, 7 * h // 8), outline=255 if mode == "L" else (255,) * 3,
                                   width=max(1, w // 10))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    return make


def mask_bytes(box=(64, 64, 192, 192), size: int = 256) -> bytes:
    """A drawn mask as the page sends it: white = keep, black = fill."""
    import io

    from PIL import Image, ImageDraw

    m = Image.new("L", (size, size), 255)
    if box:
        ImageDraw.Draw(m).rectangle(box, fill=0)
    buf = io.BytesIO()
    m.save(buf, format="PNG")
    return buf.getvalue()
