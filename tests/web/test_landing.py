"""Tabs whose capability lands later: with a module that keeps the promised contract
(``pixelforge.pipelines.sr.load_sr(run) -> .upscale(PIL image) -> PIL image``, ``.scale``;
``pixelforge.pipelines.autoencoder.load_autoencoder(run) -> .restore(images, "denoise")``),
the tab turns available and its form works end to end. The stand-in pipelines here are
simple and exact (a nearest-neighbour upscaler, an identity-free smoother) so the studio's
own logic is what is tested."""

from __future__ import annotations

import importlib.machinery
import io
import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image


def _fake_module(monkeypatch, name: str, **attrs) -> None:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)


def _fake_run(root, name: str, family: str, **model) -> None:
    d = root / name
    (d / "checkpoints" / "step_00000010").mkdir(parents=True, exist_ok=True)
    (d / "checkpoints" / "latest").write_text("step_00000010\n")
    (d / "config.json").write_text(json.dumps({"family": family, "model": {"name": family, "config": model},
                                               "data": {"spec": "digits"}}))


class NearestSR:
    scale = 2

    def upscale(self, image: Image.Image) -> Image.Image:
        return image.resize((image.width * 2, image.height * 2), Image.NEAREST)


class BlurAE:
    image_size, cfg = 28, types.SimpleNamespace(channels=1)

    def restore(self, images: torch.Tensor, task: str = "denoise") -> torch.Tensor:
        assert task == "denoise" and images.shape == (1, 1, 28, 28)
        return torch.nn.functional.avg_pool2d(images, 3, 1, 1, count_include_pad=False)


@pytest.fixture
def landed(monkeypatch, tmp_path, studio):
    from starlette.testclient import TestClient

    from pixelforge.web import Studio, create_app

    loaded = []
    _fake_module(monkeypatch, "pixelforge.pipelines.sr", load_sr=lambda p, device="auto": loaded.append(p) or NearestSR())
    _fake_module(monkeypatch, "pixelforge.pipelines.autoencoder",
                 load_autoencoder=lambda p, device="auto": loaded.append(p) or BlurAE())
    runs = tmp_path / "runs"
    _fake_run(runs, "sr-x2", "sr", scale=2)
    _fake_run(runs, "ae", "autoencoder", image_size=28)
    with TestClient(create_app(Studio(runs, tmp_path / "out", device="cpu"))) as c:
        yield c, loaded


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_upscale_tab_once_super_resolution_lands(landed):
    c, loaded = landed
    tabs = {t["name"]: t for t in c.get("/api/tabs").json()["tabs"]}
    assert tabs["upscale"]["available"] and tabs["restore"]["available"]
    blocks = np.kron(np.random.default_rng(0).integers(0, 255, (16, 20), dtype=np.uint8), np.ones((2, 2), np.uint8))
    r = c.post("/api/tabs/upscale/upscale", data={"model": "sr-x2", "reference": "true"},
               files={"image": ("x.png", _png(blocks), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["input", "bicubic", "super-resolved"]
    assert body["metrics"]["input"] == "20x16" and body["metrics"]["output"] == "40x32"
    small, out = (np.asarray(Image.open(io.BytesIO(c.get(body["images"][i]["url"]).content))) for i in (0, 2))
    assert small.shape == (16, 20) and out.shape == (32, 40)
    assert np.array_equal(out, np.kron(small, np.ones((2, 2), np.uint8)))  # what the model returned is shown
    mse = np.mean((out.astype(float) - blocks) ** 2) / 255 ** 2  # PSNR against the upload, computed here
    assert body["metrics"]["PSNR model (dB)"] == pytest.approx(-10 * np.log10(mse), abs=0.01)
    assert loaded and loaded[0].name == "sr-x2"
    r = c.post("/api/tabs/upscale/upscale", data={"model": "ae", "reference": "false"},
               files={"image": ("x.png", _png(blocks), "image/png")})
    assert r.status_code == 400 and "needs a sr run" in r.json()["error"]


def test_restore_tab_once_autoencoders_land(landed):
    c, _ = landed
    img = np.zeros((28, 28), np.uint8)
    img[8:20, 8:20] = 255
    r = c.post("/api/tabs/restore/restore", data={"model": "ae", "noise": "0.3", "seed": "0"},
               files={"image": ("x.png", _png(img), "image/png")})
    assert r.status_code == 200, r.text
    m = r.json()["metrics"]
    assert m["PSNR restored (dB)"] > m["PSNR noisy (dB)"]  # smoothing removes much of the added noise
    r = c.post("/api/tabs/restore/restore", data={"model": "ae", "noise": "0"},
               files={"image": ("x.png", _png(img), "image/png")})
    assert r.status_code == 200 and r.json()["metrics"] == {}  # no reference, no PSNR
