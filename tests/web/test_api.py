"""The studio's HTTP API through Starlette's TestClient: every tab's action, validation,
errors as JSON messages, the busy response, and no file served outside runs and outputs."""

from __future__ import annotations

import functools
import importlib.util
import io
import math

import numpy as np
import pytest
from PIL import Image

from pixelforge.pipelines.diffusion import DiffusionPipeline
from pixelforge.web.tabs import TABS, Action, Field, Result, Tab, get_tab

from .conftest import mask_bytes


def image_at(client, url: str) -> Image.Image:
    r = client.get(url)
    assert r.status_code == 200, r.text
    im = Image.open(io.BytesIO(r.content))
    im.load()
    return im


def post(client, tab: str, action: str, files=None, **data):
    return client.post(f"/api/tabs/{tab}/{action}", data={k: str(v) for k, v in data.items()}, files=files or {})


# -- page and tab table -------------------------------------------------------------------
def test_page_and_static_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<script src="/static/app.js">' in r.text and "http" not in r.text.replace("http-equiv", "")  # no CDN
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/tabs" in js.text
    assert client.get("/static/style.css").status_code == 200


def test_tab_table_reports_what_is_available(client):
    tabs = {t["name"]: t for t in client.get("/api/tabs").json()["tabs"]}
    assert list(tabs) == [t.name for t in TABS]
    for name in ("generate", "inpaint", "classify", "runs", "style"):
        assert tabs[name]["available"], name
    assert tabs["generate"]["actions"][0]["fields"][0]["type"] == "run"
    for name, module in (("style", "pixelforge.pipelines.style"), ("compress", "pixelforge.pipelines.codec"),
                         ("upscale", "pixelforge.pipelines.sr"), ("restore", "pixelforge.pipelines.autoencoder")):
        landed = importlib.util.find_spec(module) is not None
        if not landed:
            assert not tabs[name]["available"]
            assert "not part of this version" in tabs[name]["message"]
            assert tabs[name]["actions"] == []


def test_a_tab_whose_capability_landed_without_a_form_is_still_unavailable():
    tab = Tab("x", "X", "", available=lambda: True)
    ok, message = tab.status()
    assert not ok and "no form" in message
    tab.actions.append(Action("go", "Go", [Field("n", "int", "N", 1)], lambda s, v: Result()))
    assert tab.status() == (True, "")


def test_unavailable_tab_answers_with_its_message(client, monkeypatch):
    from pixelforge.web.tabs import compress

    monkeypatch.setattr(compress.TAB, "available", lambda: False)  # as in an install without the codec
    r = post(client, "compress", "compress")
    assert r.status_code == 501 and "not part of this version" in r.json()["error"]
    assert client.post("/api/tabs/nope/x").status_code == 404
    assert "no action" in post(client, "generate", "nope").json()["error"]


def test_models_are_filtered_by_family_and_include_shipped_ones(client):
    gen = client.get("/api/models?family=gan,diffusion").json()["models"]
    assert {m["id"] for m in gen} == {"gan", "diffusion"}
    gan = next(m for m in gen if m["id"] == "gan")
    assert gan["num_classes"] == 10 and gan["classes"][3] == "3"
    clf = client.get("/api/models?family=classifier").json()["models"]
    assert any(m["id"] == "zoo:fashion-mnist-cnn-v1" and m["shipped"] for m in clf)


# -- generate -------------------------------------------------------------------------------
def test_generate_gan_grid_is_deterministic_per_seed(client):
    r = post(client, "generate", "sample", model="gan", n=20, seed=1, label=3)
    assert r.status_code == 200, r.text
    url = r.json()["images"][0]["url"]
    im = image_at(client, url)
    assert im.size == (5 * 30 + 2, 4 * 30 + 2)  # 20 images of 28 px, 5 per row, 2 px padding
    again = image_at(client, post(client, "generate", "sample", model="gan", n=20, seed=1, label=3).json()["images"][0]["url"])
    other = image_at(client, post(client, "generate", "sample", model="gan", n=20, seed=2, label=3).json()["images"][0]["url"])
    assert np.array_equal(np.asarray(im), np.asarray(again))
    assert not np.array_equal(np.asarray(im), np.asarray(other))
    # Without a class a conditional run shows every class, one per column.
    every = image_at(client, post(client, "generate", "sample", model="gan", n=20).json()["images"][0]["url"])
    assert every.size == (10 * 30 + 2, 2 * 30 + 2)


def test_generate_gan_with_a_latent_spread(client):
    """The GAN's latent spread reaches its sampler for that request only: a narrower spread
    makes other images, and the next request without it makes the default ones again."""
    def grid(**spread):
        r = post(client, "generate", "sample", model="gan", n=8, seed=1, label=3, **spread)
        assert r.status_code == 200, r.text
        return r.json(), np.asarray(image_at(client, r.json()["images"][0]["url"]))

    _, default = grid()
    body, narrow = grid(latent_scale=0.3)
    assert body["metrics"]["latent_scale"] == 0.3 and not np.array_equal(default, narrow)
    assert np.array_equal(grid()[1], default)


def test_generate_diffusion_with_steps_and_guidance(client, monkeypatch):
    r = post(client, "generate", "sample", model="diffusion", n=4, seed=0, steps=2, guidance=2.5, label="7")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metrics"]["steps"] == 2 and body["metrics"]["guidance"] == 2.5
    assert image_at(client, body["images"][0]["url"]).size == (62, 62)
    calls = []
    real_sample = DiffusionPipeline.sample

    @functools.wraps(real_sample)  # keeps the signature the tab reads its options from
    def recording_sample(self, *args, **kwargs):
        calls.append(kwargs)
        return real_sample(self, *args, **kwargs)

    monkeypatch.setattr(DiffusionPipeline, "sample", recording_sample)
    for sampler in ("ddim", "ddpm", "dpm++"):
        r = post(client, "generate", "sample", model="diffusion", n=4, seed=0, steps=3, sampler=sampler)
        assert r.status_code == 200 and r.json()["metrics"]["sampler"] == sampler, r.text
    assert [(c.get("eta"), c.get("solver")) for c in calls] == [(0.0, "ddim"), (1.0, "ddim"), (0.0, "dpm++")]
    assert post(client, "generate", "sample", model="diffusion", n=1, sampler="euler").status_code == 400


def test_interpolation_is_an_animated_gif(client):
    r = post(client, "generate", "interpolate", model="gan", rows=3, frames=6, seed=0)
    assert r.status_code == 200, r.text
    gif = image_at(client, r.json()["images"][0]["url"])
    assert gif.format == "GIF" and gif.n_frames == 6
    r = post(client, "generate", "interpolate", model="diffusion", rows=3, frames=6)
    assert r.status_code == 400 and "needs a gan run" in r.json()["error"]


def test_download_link_sends_an_attachment(client):
    url = post(client, "generate", "sample", model="gan", n=1).json()["images"][0]["url"]
    r = client.get(url + "?download=1")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]


# -- inpaint and classify ---------------------------------------------------------------------
def test_inpaint_fills_only_the_drawn_region(client, png_bytes):
    files = {"image": ("digit.png", png_bytes(), "image/png"), "mask": ("mask.png", mask_bytes(), "image/png")}
    r = post(client, "inpaint", "inpaint", files=files, model="diffusion", steps=3, seed=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["original", "with the hole", "inpainted"]
    assert body["layout"] == "compare" and math.isfinite(body["metrics"]["PSNR vs original (dB)"])
    original, out = (np.asarray(image_at(client, body["images"][i]["url"])).astype(int) for i in (0, 2))
    assert original.shape == out.shape == (28, 28)
    keep = np.ones((28, 28), bool)
    keep[7:22, 7:22] = False  # the 64..192 box of a 256 px mask at 28 px, with a pixel of margin
    assert np.abs(original - out)[keep].max() <= 1  # kept pixels are the original's
    assert np.abs(original - out)[9:20, 9:20].max() > 0  # the hole was filled with something new


def test_inpaint_needs_a_drawn_region(client, png_bytes):
    files = {"image": ("digit.png", png_bytes(), "image/png"), "mask": ("mask.png", mask_bytes(box=None), "image/png")}
    r = post(client, "inpaint", "inpaint", files=files, model="diffusion", steps=2)
    assert r.status_code == 400 and "nothing to fill" in r.json()["error"]
    r = post(client, "inpaint", "inpaint", files={"image": ("d.png", png_bytes(), "image/png")}, model="diffusion")
    assert r.status_code == 400 and "draw the region" in r.json()["error"]


def test_classify_with_the_shipped_classifier(client, png_bytes):
    r = post(client, "classify", "classify", files={"image": ("x.png", png_bytes(40, 30, "RGB"), "image/png")},
             model="zoo:fashion-mnist-cnn-v1")
    assert r.status_code == 200, r.text
    probs = [float(v.rstrip("%")) for v in r.json()["metrics"].values()]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 100.1


# -- validation and errors --------------------------------------------------------------------
@pytest.mark.parametrize("data, message", [
    ({"model": "gan", "n": 0}, "outside"),
    ({"model": "gan", "n": 100000}, "outside"),
    ({"model": "gan", "n": "many"}, "not a whole number"),
    ({"model": "diffusion", "n": 1, "guidance": "nan"}, "finite"),
    ({"model": "gan", "n": 2, "label": "11"}, "label"),
    ({"model": "nope"}, "no run"),
    ({"model": "../gan"}, "no run"),
    ({"model": "/etc"}, "no run"),
    ({"model": ""}, "a value is needed"),
    ({"model": "zoo:fashion-mnist-cnn-v1"}, "classifier"),
])
def test_bad_form_values_are_one_line_messages(client, data, message):
    r = post(client, "generate", "sample", **data)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"] and "\n" not in r.json()["error"]


def test_uploads_are_validated(client, png_bytes):
    def classify(content: bytes, name="x.png"):
        return post(client, "classify", "classify", files={"image": (name, content, "image/png")},
                    model="zoo:fashion-mnist-cnn-v1")

    assert "not an image" in classify(b"GIF89a but not really").json()["error"]
    r = classify(png_bytes(64, 64)[:-40])
    assert r.status_code == 400 and "corrupt or truncated" in r.json()["error"]
    r = classify(b"")
    assert r.status_code == 400 and "choose an image" in r.json()["error"]
    pdf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(pdf, format="PDF")
    assert classify(pdf.getvalue(), "x.pdf").status_code == 400


def test_upload_and_pixel_limits(web_runs, tmp_path, png_bytes):
    from starlette.testclient import TestClient

    from pixelforge.web import Studio, create_app

    studio = Studio(web_runs, tmp_path / "out", device="cpu", max_upload_mb=0.01, max_pixels=100 * 100)
    with TestClient(create_app(studio)) as c:
        big = np.random.default_rng(0).integers(0, 255, (120, 120), dtype=np.uint8)  # noise: ~14 kB as PNG
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, format="PNG")
        r = post(c, "classify", "classify", files={"image": ("n.png", buf.getvalue(), "image/png")},
                 model="zoo:fashion-mnist-cnn-v1")
        assert r.status_code == 413 and "limit" in r.json()["error"]
        r = post(c, "classify", "classify", files={"image": ("w.png", png_bytes(200, 60), "image/png")},
                 model="zoo:fashion-mnist-cnn-v1")
        assert r.status_code == 400 and "megapixel limit" in r.json()["error"]


def test_a_busy_studio_says_so(client, studio):
    studio.busy_timeout = 0.2
    with studio._lock:
        r = post(client, "generate", "sample", model="gan", n=1)
    assert r.status_code == 503 and "busy" in r.json()["error"]
    assert post(client, "generate", "sample", model="gan", n=1).status_code == 200


def test_cross_site_form_posts_are_refused(client):
    r = client.post("/api/tabs/generate/sample", data={"model": "gan", "n": "1"},
                    headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = client.post("/api/tabs/generate/sample", data={"model": "gan", "n": "1"},
                    headers={"origin": "http://testserver"})
    assert r.status_code == 200


def test_a_bug_is_a_message_not_a_traceback(client, monkeypatch):
    def broken(studio, values):
        raise RuntimeError("something deep broke\nTraceback (most recent call last): ...")

    monkeypatch.setattr(get_tab("generate").action("sample"), "handler", broken)
    r = post(client, "generate", "sample", model="gan", n=1)
    assert r.status_code == 500
    assert r.json()["error"] == "internal error in Generate: RuntimeError: something deep broke"


# -- runs and files ---------------------------------------------------------------------------
def test_run_browser(client):
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"gan", "diffusion", "ae", "cvae", "sr", "stylizer", "adain"} and runs["gan"]["step"] == 16
    d = client.get("/api/runs/gan").json()
    assert {"g_loss", "d_loss"} <= set(d["series"]) and d["series"]["g_loss"][-1][0] == 16
    assert [row["metric"] for row in d["table"]][:2] and all(row["count"] >= 1 for row in d["table"])
    assert [s.rsplit("/", 1)[1] for s in d["samples"]] == ["epoch_001.png", "epoch_002.png"]
    for url in [*d["samples"], d["loss_png"], d["final"]]:
        assert image_at(client, f"/files/runs/{url}").size[0] > 28
    assert d["config"]["task.loss"] == "hinge"
    assert client.get("/api/runs/nope").status_code == 404


def test_augmentation_studies_are_listed_with_their_plot(client):
    studies = client.get("/api/runs").json()["studies"]
    assert [s["id"] for s in studies] == ["augment"] and studies[0]["budgets"] == [50, 100]
    row = studies[0]["rows"][0]
    assert row["best_generative"] == "flips + shifts + generated 4:1" and row["met"] is True
    assert image_at(client, f"/files/runs/{studies[0]['plot']}").size[0] > 100
    assert client.get("/files/runs/augment/augmentation.json").status_code == 404  # pictures only


def test_broken_study_reports_are_skipped(tmp_path):
    from PIL import Image as _Image

    from pixelforge.web import Studio

    reports = {"broken": "{not json", "other": '{"rows": 3}', "numbers": '{"rows": [1]}',
               "old-form": '{"rows": [{"per_class": 50, "real": {"mean": 0.8, "std": 0.01}}]}'}
    for name, text in reports.items():
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "augmentation.json").write_text(text)
        _Image.new("L", (4, 4)).save(tmp_path / "runs" / name / "augmentation.png")
    studio = Studio(tmp_path / "runs", tmp_path / "out")
    assert studio.list_studies() == []
    with pytest.raises(FileNotFoundError):  # no study, no run: its pictures are not served
        studio.run_file("old-form/augmentation.png")


def test_metrics_are_thinned_for_the_chart(studio):
    d = studio.run_details("gan", max_points=3)
    assert len(d["series"]["g_loss"]) <= 4 and d["series"]["g_loss"][-1][0] == 16


@pytest.mark.parametrize("url", [
    "/files/runs/%2e%2e/%2e%2e/etc/passwd",
    "/files/runs/gan/..%2f..%2fgan%2fconfig.json",
    "/files/runs//etc/passwd",
    "/files/runs/gan/config.json",
    "/files/runs/gan/metrics.jsonl",
    "/files/runs/gan/checkpoints/latest",
    "/files/runs/outside.png",
    "/files/runs/gan/escape.png",
    "/files/out/passwd",
    "/files/out/%2e%2e%2fsecret.png",
    "/api/runs/%2e%2e",
    "/static/%2e%2e/studio.py",
])
def test_nothing_is_served_outside_runs_and_outputs(client, web_runs, tmp_path, url):
    from PIL import Image as _Image

    secret = tmp_path / "secret.png"
    _Image.new("L", (4, 4)).save(secret)
    (web_runs / "outside.png").write_bytes(secret.read_bytes())  # in runs_dir but in no run
    link = web_runs / "gan" / "escape.png"
    if not link.exists():
        link.symlink_to(secret)
    r = client.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert r.json().get("error")


def test_raw_traversal_paths_are_refused(studio, web_runs):
    for bad in ["../x.png", "gan/../../x.png", "/etc/passwd", "gan\\..\\x.png", "gan/./loss.png", "", "gan/\x00.png"]:
        with pytest.raises(FileNotFoundError):
            studio.run_file(bad)
    assert studio.run_file("gan/loss.png") == (web_runs / "gan" / "loss.png").resolve()


def test_outputs_are_pruned(studio):
    import torch

    studio.max_outputs = 3
    names = [studio.save(torch.rand(1, 1, 4, 4)) for _ in range(6)]
    assert sorted(p.name for p in studio.output_dir.iterdir()) == sorted(names[-3:])
