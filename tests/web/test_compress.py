"""The Compress tab: the overfitted codec as a polled background job outside the inference
lock, and the shipped amortized codec; the decoded image, JPEG at the same size, the numbers."""

from __future__ import annotations

import io
import time

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
    action = next(a for a in tab["actions"] if a["name"] == "compress")
    model = action["fields"][0]
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


def _wait(client, job: str, seen: list | None = None, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get(f"/api/jobs/{job}").json()
        if seen is not None:
            seen.append(status)
        if status["state"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def test_the_overfitted_codec_runs_as_a_job_outside_the_inference_lock(client):
    studio = client.app.state.studio
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "compress")
    assert next(a for a in tab["actions"] if a["name"] == "overfit")["background"]
    r = post(client, "compress", "overfit", files=_upload(photo_image(48, 64)), quality=4, effort="fast")
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert studio._lock.acquire(blocking=False)  # other tabs can run while it encodes
    studio._lock.release()
    second = post(client, "compress", "overfit", files=_upload(photo_image(48, 64)), quality=1, effort="fast")
    seen = []
    status = _wait(client, job, seen)
    assert second.status_code == 503 or _wait(client, second.json()["job"])["state"] == "done"
    assert status["state"] == "done", status
    assert any("bpp" in s["note"] for s in seen if s["state"] == "running") or len(seen) == 1
    result = status["result"]
    assert [im["title"] for im in result["images"]] == ["original", "pixelforge", "JPEG, same size"]
    assert result["metrics"]["model"] == "overfit" and result["metrics"]["PSNR pixelforge (dB)"] > 15
    assert client.get("/api/jobs/nonexistent").status_code == 404


def test_a_job_that_fails_says_why(client, monkeypatch):
    from pixelforge.errors import PixelforgeError
    from pixelforge.pipelines.overfit_codec import OverfitCodecPipeline

    r = post(client, "compress", "overfit", files=_upload(photo_image(48, 64)), quality=4, effort="hardest")
    assert r.status_code == 400 and "Effort: choose one of fast, default, best" in r.json()["error"]

    def refuse(*args, **kwargs):
        raise PixelforgeError("this image cannot be coded")

    monkeypatch.setattr(OverfitCodecPipeline, "encode", refuse)
    r = post(client, "compress", "overfit", files=_upload(photo_image(48, 64)), quality=4, effort="fast")
    status = _wait(client, r.json()["job"])
    assert status == {"state": "error", "progress": 0.0, "note": "starting", "error": "this image cannot be coded"}
