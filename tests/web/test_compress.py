"""The Compress tab on the shipped codec: the decoded image, JPEG at the same size, the numbers."""

from __future__ import annotations

import io

from PIL import Image

from .conftest import photo_image
from .test_api import image_at, post


def _upload(im: Image.Image):
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return {"image": ("photo.png", buf.getvalue(), "image/png")}


def test_compress_offers_the_shipped_codec(client):
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "compress")
    assert tab["available"]
    model = tab["actions"][0]["fields"][0]
    assert model["type"] == "run" and model["default"] == "zoo:photos-codec-v1"
    codecs = client.get("/api/models?family=codec").json()["models"]
    assert any(m["id"] == "zoo:photos-codec-v1" and m["shipped"] for m in codecs)


def test_compress_a_photo_beside_jpeg(client):
    photo = photo_image(96, 128)
    r = post(client, "compress", "compress", files=_upload(photo), model="zoo:photos-codec-v1", quality=2)
    assert r.status_code == 200, r.text
    body = r.json()
    titles = [im["title"] for im in body["images"]]
    assert titles == ["original", "pixelforge", "JPEG, same size"]
    decoded = image_at(client, body["images"][1]["url"])
    assert decoded.size == photo.size
    m = body["metrics"]
    assert 0 < m["pixelforge (bpp)"] < 8 and m["PSNR pixelforge (dB)"] > 20
    assert abs(m["JPEG same size (bpp)"] - m["pixelforge (bpp)"]) < 0.5 * m["pixelforge (bpp)"] + 0.1
    assert "bytes" in body["message"]


def test_compress_refuses_a_generator(client):
    r = post(client, "compress", "compress", files=_upload(photo_image(64, 64)), model="gan", quality=2)
    assert r.status_code == 400 and "codec" in r.json()["error"]
