"""The Style tab on the real optimisation (offline backbone): tiny sizes and few steps."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from pixelforge.pipelines.style import rgb_to_ycbcr
from pixelforge.web.tabs import style as style_tab

from .conftest import photo_image
from .test_api import image_at, post


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def stripes(h: int = 48, w: int = 48) -> Image.Image:
    """A 'painting': saturated diagonal red/blue stripes, far from the photo's colours and texture."""
    yy, xx = np.mgrid[0:h, 0:w]
    band = ((xx + yy) // 4) % 2
    img = np.stack([band * 230 + 10, 20 + 0 * band, (1 - band) * 220 + 20], -1)
    return Image.fromarray(img.astype(np.uint8))


def files(content=True, style=True):
    out = {}
    if content:
        out["content"] = ("photo.png", png(photo_image(40, 48)), "image/png")
    if style:
        out["style"] = ("style.png", png(stripes()), "image/png")
    return out


def arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float64) / 255


def test_style_tab_is_available_with_two_forms(client):
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "style")
    assert tab["available"] and tab["message"] == ""
    actions = {a["name"]: {f["name"]: f for f in a["fields"]} for a in tab["actions"]}
    assert set(actions) == {"stylize", "texture", "model"}
    assert actions["model"]["model"]["families"] == ["style"] and not actions["model"]["style"]["required"]
    assert actions["stylize"]["content"]["type"] == "image" and actions["stylize"]["style"]["type"] == "image"
    assert actions["stylize"]["method"]["options"] == ["lbfgs", "adam"]
    assert actions["stylize"]["size"]["max"] == style_tab.MAX_SIZE
    assert actions["stylize"]["steps"]["max"] == style_tab.MAX_STEPS
    assert "content" not in actions["texture"]  # a texture needs only the style image
    assert actions["stylize"]["method"]["default"] == "lbfgs" and actions["texture"]["method"]["default"] == "adam"


def test_stylize_shows_content_style_and_a_result_moved_towards_the_style(client):
    r = post(client, "style", "stylize", files(), method="lbfgs", strength=10, steps=15, size=32,
             preserve_color="false")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["layout"] == "compare" and [i["title"] for i in body["images"]] == ["content", "style", "result"]
    content, style, result = (image_at(client, i["url"]) for i in body["images"])
    assert content.size == result.size == (32, 27)  # longest side = size, aspect kept
    assert style.size == (32, 32)
    m = body["metrics"]
    assert m["size"] == "32x27" and m["steps"] == 15 and "L-BFGS" in m["method"]
    assert 0 <= m["final content error"] and 0 <= m["final style error"] < 1
    # The result is not the content any more, and its colours moved towards the style's red/blue.
    c, s, x = arr(content), arr(style), arr(result)
    assert np.abs(x - c).mean() > 0.02
    assert np.abs(x.mean((0, 1)) - s.mean((0, 1))).sum() < np.abs(c.mean((0, 1)) - s.mean((0, 1))).sum()


def test_stylize_with_adam_and_preserved_colours(client):
    r = post(client, "style", "stylize", files(), method="adam", strength=10, steps=5, size=32,
             preserve_color="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Adam" in body["metrics"]["method"] and body["metrics"]["preserve color"] == "yes"
    content, _, result = (image_at(client, i["url"]) for i in body["images"])
    to_t = lambda im: torch.from_numpy(arr(im)).permute(2, 0, 1).float()  # noqa: E731
    chroma_error = (rgb_to_ycbcr(to_t(result))[1:] - rgb_to_ycbcr(to_t(content))[1:]).abs().mean()
    assert chroma_error < 0.02  # colours are the content's; only luminance changed
    assert np.abs(arr(result) - arr(content)).mean() > 0.002


def test_the_studio_result_is_what_the_pipeline_returns(client):
    from pixelforge.pipelines.style import load_rgb, stylize

    r = post(client, "style", "stylize", files(), method="lbfgs", strength=3, steps=4, size=32, match_colors="true")
    assert r.status_code == 200, r.text
    served = arr(image_at(client, r.json()["images"][2]["url"]))
    direct = stylize(load_rgb(photo_image(40, 48), 32), load_rgb(stripes(), 32), size=32, steps=4,
                     style_weight=3, backbone=style_tab._backbone(torch.device("cpu")), progress=False)
    assert np.abs(served - arr(direct.to_pil())).max() <= 1 / 255 + 1e-9


def test_texture_synthesis_from_the_style_image_alone(client):
    r = post(client, "style", "texture", files(content=False), method="adam", steps=20, size=32, seed=1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["style", "texture"]
    style, texture = (image_at(client, i["url"]) for i in body["images"])
    assert texture.size == (32, 32)
    # From grey noise towards the style's palette: mostly red or blue pixels, little green.
    t = arr(texture)
    assert t[..., 1].mean() < 0.35 and (t[..., 0] + t[..., 2]).mean() > 0.6
    assert body["metrics"]["final style error"] < 0.8  # ~0.98 for the grey noise it starts from


@pytest.mark.parametrize("data, message", [
    ({"size": 4096}, "Size (longest side, px): 4096 is outside 16..512"),
    ({"steps": 100000}, "Steps: 100000 is outside 1..500"),
    ({"size": 512, "steps": 500}, "too much work for the studio"),
    ({"method": "sgd"}, "Optimiser: choose one of lbfgs, adam"),
    ({"strength": "-1"}, "Style strength (style weight): -1 is outside 0..100"),
])
def test_limits_are_enforced_with_a_message_before_any_work(client, data, message, monkeypatch):
    monkeypatch.setattr(style_tab, "_run", lambda *a: pytest.fail("the optimisation must not start"))
    r = post(client, "style", "stylize", files(), **data)
    assert r.status_code == 400 and message in r.json()["error"], r.text
    if "too much work" in message:
        assert "at 512 px use at most 197 steps" in r.json()["error"] and "pixelforge stylize" in r.json()["error"]


def test_missing_images_are_named(client):
    r = post(client, "style", "stylize", files(style=False))
    assert r.status_code == 400 and r.json()["error"] == "Style image: choose an image file"
    r = post(client, "style", "texture", {})
    assert r.status_code == 400 and r.json()["error"] == "Style image: choose an image file"
    bad = {"content": ("x.png", b"not an image", "image/png"), "style": files()["style"]}
    r = post(client, "style", "stylize", bad)
    assert r.status_code == 400 and "Content image: not an image" in r.json()["error"]


def test_check_work_names_what_fits():
    style_tab.check_work(256, 200)
    with pytest.raises(Exception, match=r"at 200 steps at most 256 px"):
        style_tab.check_work(300, 200)
    # Coarse to fine: the coarse scales' steps are cheap, so more fits; the suggestions are what passes.
    style_tab.check_work(300, 200, scales=3)
    with pytest.raises(Exception) as refused:
        style_tab.check_work(512, 300, scales=3)
    steps, size = map(int, re.search(r"at most (\d+) steps, or at 300 steps at most (\d+) px", str(refused.value)).groups())
    style_tab.check_work(512, steps, scales=3)
    style_tab.check_work(size, 300, scales=3)
    for too_much in ((512, steps + 1), (size + 1, 300)):
        with pytest.raises(Exception, match="too much work"):
            style_tab.check_work(*too_much, scales=3)


def test_trained_models_in_the_style_tab(client):
    r = post(client, "style", "model", files(style=False), model="stylizer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["title"] for i in body["images"]] == ["content", "style (trained)", "result"]
    assert image_at(client, body["images"][2]["url"]).size == (48, 40)
    assert "feed-forward" in body["metrics"]["method"]
    r = post(client, "style", "model", files(), model="adain", alpha="0.5")
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["alpha"] == 0.5 and [i["title"] for i in r.json()["images"]][1] == "style"
    # the refine pass's strength for one request; the cached model keeps its own for the next
    own = r.json()["metrics"]["refine strength"]
    results = {}
    for strength in ("0", "1"):
        r = post(client, "style", "model", files(), model="adain", refine_alpha=strength)
        assert r.status_code == 200, r.text
        assert r.json()["metrics"]["refine strength"] == float(strength)
        results[strength] = np.asarray(image_at(client, r.json()["images"][-1]["url"]), dtype=int)
    assert np.abs(results["0"] - results["1"]).max() > 2
    default = post(client, "style", "model", files(), model="adain").json()
    assert default["metrics"]["refine strength"] == own and default["metrics"]["content scale"] == 1.0
    # the content scale likewise, for one request
    halved = post(client, "style", "model", files(), model="adain", content_scale="0.5")
    assert halved.status_code == 200, halved.text
    assert halved.json()["metrics"]["content scale"] == 0.5
    assert np.abs(np.asarray(image_at(client, halved.json()["images"][-1]["url"]), dtype=int)
                  - np.asarray(image_at(client, default["images"][-1]["url"]), dtype=int)).max() > 2
    assert post(client, "style", "model", files(), model="adain").json()["metrics"]["content scale"] == 1.0
    refused = post(client, "style", "model", files(), model="adain", content_scale="0.1")
    assert refused.status_code == 400
    ignored = post(client, "style", "model", files(style=False), model="stylizer", refine_alpha="0.5")
    assert ignored.status_code == 200  # a feed-forward model ignores AdaIN's settings, as it does alpha
    refused = post(client, "style", "model", files(), model="stylizer")
    assert refused.status_code == 400 and "style built in" in refused.json()["error"]
    refused = post(client, "style", "model", files(style=False), model="adain")
    assert refused.status_code == 400 and "give the style image" in refused.json()["error"]
    refused = post(client, "style", "model", files(style=False), model="gan")
    assert refused.status_code == 400 and "needs a style run" in refused.json()["error"]


def test_the_shipped_models_work_out_of_the_box(client):
    from pixelforge.pipelines.stylizer import SHIPPED_ADAIN
    from pixelforge.zoo import list_pretrained

    assert SHIPPED_ADAIN in list_pretrained("style")
    tab = next(t for t in client.get("/api/tabs").json()["tabs"] if t["name"] == "style")
    model_form = next(a for a in tab["actions"] if a["name"] == "model")
    assert next(f for f in model_form["fields"] if f["name"] == "model")["default"] == f"zoo:{SHIPPED_ADAIN}"
    r = post(client, "style", "model", files(), model=f"zoo:{SHIPPED_ADAIN}")
    assert r.status_code == 200, r.text
    result = arr(image_at(client, r.json()["images"][-1]["url"]))
    assert result.shape == (40, 48, 3) and result.std() > 0.02  # a picture, not a flat field
    for name in (n for n in list_pretrained("style") if n != SHIPPED_ADAIN):  # feed-forward: no style image
        r = post(client, "style", "model", files(style=False), model=f"zoo:{name}")
        assert r.status_code == 200, r.text
        assert [i["title"] for i in r.json()["images"]] == ["content", "result"]
