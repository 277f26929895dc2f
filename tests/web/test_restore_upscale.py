"""The Upscale and Restore tabs on real models: the shipped super-resolution weights and a
tiny SR run, a tiny denoising + inpainting autoencoder and a conditional VAE (tests/web/conftest.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pixelforge.data import load_dataset
from pixelforge.metrics.image_quality import psnr
from pixelforge.pipelines.sr import SRPipeline, load_shipped_sr
from pixelforge.web import Studio, create_app
from pixelforge.web.studio import to_tensor

from .conftest import mask_bytes, photo_image
from .test_api import image_at, post


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def upload(im: Image.Image, name: str = "image"):
    return {name: ("x.png", png(im), "image/png")}


@pytest.fixture(scope="module")
def digit() -> Image.Image:
    return Image.fromarray(load_dataset("digits", size=28, split="test", limit=1).images[0, 0].numpy())


# -- upscale ----------------------------------------------------------------------------------
def test_upscale_offers_shipped_models_and_runs_defaulting_to_x4(client):
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "upscale")
    assert tab["available"] and tab["actions"][0]["fields"][0]["default"] == "zoo:photos-sr-x4-v1"
    models = {m["id"]: m for m in client.get("/api/models?family=sr").json()["models"]}
    assert set(models) == {"sr", "zoo:photos-sr-x2-v1", "zoo:photos-sr-x4-v1"}
    assert models["zoo:photos-sr-x4-v1"]["shipped"] and not models["sr"]["shipped"]


def test_studio_loads_shipped_sr_models_and_caches_them(studio):
    pipe = studio.load("zoo:photos-sr-x4-v1", ["sr"])
    assert isinstance(pipe, SRPipeline) and pipe.scale == 4
    assert studio.load("zoo:photos-sr-x4-v1", ["sr"]) is pipe
    assert studio.load("zoo:photos-sr-x2-v1", ["sr"]).scale == 2
    with pytest.raises(Exception, match="is a classifier model; this needs sr"):
        studio.load("zoo:fashion-mnist-cnn-v1", ["sr"])
    with pytest.raises(Exception, match="no shipped model"):
        studio.load("zoo:photos-sr-x8-v1", ["sr"])


def test_upscale_x4_with_the_upload_as_reference(client):
    photo = photo_image(80, 96)
    r = post(client, "upscale", "upscale", upload(photo), model="zoo:photos-sr-x4-v1", reference="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["input", "bicubic", "super-resolved"]
    m = body["metrics"]
    assert (m["model"], m["scale"], m["input"], m["output"]) == ("photos-sr-x4-v1", "x4", "24x20", "96x80")
    small, bicubic, out = (image_at(client, i["url"]) for i in body["images"])
    assert small.size == (24, 20) and bicubic.size == out.size == (96, 80) and out.mode == "RGB"
    ref = to_tensor(photo)  # PSNR against the upload, recomputed here from the images shown
    assert m["PSNR model (dB)"] == pytest.approx(float(psnr(to_tensor(out), ref)[0]), abs=0.01)
    assert m["PSNR bicubic (dB)"] == pytest.approx(float(psnr(to_tensor(bicubic), ref)[0]), abs=0.01)
    assert m["PSNR model (dB)"] > m["PSNR bicubic (dB)"]  # the shipped network beats bicubic


def test_upscale_shows_what_the_model_returns(client):
    photo = photo_image(40, 48, seed=3)
    r = post(client, "upscale", "upscale", upload(photo), model="zoo:photos-sr-x2-v1", reference="false")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "PSNR model (dB)" not in body["metrics"] and body["metrics"]["output"] == "96x80"
    out = np.asarray(image_at(client, body["images"][2]["url"]))
    assert np.array_equal(out, np.asarray(load_shipped_sr("photos-sr-x2-v1", device="cpu").upscale(photo)))


def test_upscale_with_an_sr_run_and_refusals(client, digit):
    r = post(client, "upscale", "upscale", upload(photo_image(64, 64)), model="sr", reference="true")
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["scale"] == "x2" and r.json()["metrics"]["output"] == "64x64"
    r = post(client, "upscale", "upscale", upload(digit), model="ae", reference="false")
    assert r.status_code == 400 and "needs a sr run" in r.json()["error"]
    r = post(client, "upscale", "upscale", upload(photo_image(40, 40)), model="zoo:photos-sr-x4-v1", reference="true")
    assert r.status_code == 400 and "too small to shrink x4" in r.json()["error"]


def test_upscale_respects_the_studios_pixel_limit(web_runs, tmp_path):
    from starlette.testclient import TestClient

    studio = Studio(web_runs, tmp_path / "out", device="cpu", max_pixels=200_000)
    with TestClient(create_app(studio)) as c:
        photo = photo_image(200, 300)  # 60k px: a valid upload, but x4 would be 960k px
        r = post(c, "upscale", "upscale", upload(photo), model="zoo:photos-sr-x4-v1", reference="false")
        assert r.status_code == 400
        msg = r.json()["error"]
        assert "1200x800 = 1.0 MP, over the studio's 0.2 MP limit" in msg and "x2" in msg
        assert not list((tmp_path / "out").glob("*.png"))  # refused before any work
        r = post(c, "upscale", "upscale", upload(photo), model="zoo:photos-sr-x4-v1", reference="true")
        assert r.status_code == 200 and r.json()["metrics"]["output"] == "300x200"  # shrunk first: fits
        r = post(c, "upscale", "upscale", upload(photo_image(500, 500)), model="zoo:photos-sr-x4-v1",
                 reference="true")
        assert r.status_code == 400 and "megapixel limit" in r.json()["error"]  # the upload itself


# -- restore ----------------------------------------------------------------------------------
def test_restore_has_denoise_and_fill_forms(client):
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "restore")
    assert tab["available"] and [a["name"] for a in tab["actions"]] == ["denoise", "fill"]
    fill = {f["name"]: f for f in tab["actions"][1]["fields"]}
    assert fill["mask"]["type"] == "mask" and fill["label"]["placeholder"] == "choose the image's class"
    assert {m["id"] for m in client.get("/api/models?family=autoencoder").json()["models"]} == {"ae", "cvae"}


def test_denoise_beats_the_noisy_input(client, digit):
    r = post(client, "restore", "denoise", upload(digit), model="ae", noise=0.3, seed=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["input", "restored"] and body["layout"] == "compare"
    m = body["metrics"]
    assert m["PSNR restored (dB)"] > m["PSNR noisy (dB)"] + 1
    noisy, out = (image_at(client, i["url"]) for i in body["images"])
    assert noisy.size == out.size == (28, 28)
    clean = to_tensor(digit)
    assert m["PSNR restored (dB)"] == pytest.approx(float(psnr(to_tensor(out), clean)[0]), abs=0.05)
    assert body["message"] == ""  # trained with noise: no warning
    r = post(client, "restore", "denoise", upload(digit), model="ae", noise=0)
    assert r.status_code == 200 and r.json()["metrics"] == {}  # the upload is not a reference then


def test_fill_a_drawn_region(client, digit):
    mask = mask_bytes((64, 64, 160, 160))  # 256 px canvas -> pixels 7..17 of 28
    r = post(client, "restore", "fill", {**upload(digit), "mask": ("mask.png", mask, "image/png")}, model="ae")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["original", "with the hole", "restored"]
    original, holed, out = (np.asarray(image_at(client, i["url"])).astype(int) for i in body["images"])
    hole = holed == 128
    assert hole[10:15, 10:15].all() and not hole[:5].any()
    assert np.array_equal(out[~hole], original[~hole])  # only the hole changes
    m = body["metrics"]
    assert m["PSNR restored (dB)"] > m["PSNR with the hole (dB)"] and m["filled pixels"].endswith("%")
    r = post(client, "restore", "fill", upload(digit), model="ae")
    assert r.status_code == 400 and "draw the region first" in r.json()["error"]
    r = post(client, "restore", "fill", {**upload(digit), "mask": ("m.png", mask_bytes(None), "image/png")}, model="ae")
    assert r.status_code == 400 and "nothing to fill" in r.json()["error"]


def test_conditional_runs_need_the_class(client, digit):
    r = post(client, "restore", "denoise", upload(digit), model="cvae", noise=0.2)
    assert r.status_code == 400 and "choose the image's class" in r.json()["error"]
    r = post(client, "restore", "denoise", upload(digit), model="cvae", noise=0.2, label="3")
    assert r.status_code == 200, r.text
    assert "trained without noise" in r.json()["message"]  # an honest note, not a silent weak result
    r = post(client, "restore", "denoise", upload(digit), model="gan", noise=0.2)
    assert r.status_code == 400 and "needs a autoencoder run" in r.json()["error"]
