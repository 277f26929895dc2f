"""The studio end to end in headless Chromium (Playwright): open the page, generate, walk the
latent space, inpaint with a drawn mask, upscale a photo with the shipped x4 model, denoise
and fill a drawn region with an autoencoder, stylize a photo and synthesise a texture, browse runs, see errors and unavailable tabs as
messages. Screenshots go to tests/artifacts/ (or $PIXELFORGE_TEST_ARTIFACTS).

The browser: $PIXELFORGE_CHROMIUM, else Playwright's own Chromium, else Debian's
``chromium`` package (``make browser`` installs one of them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")

ARTIFACTS = Path(os.environ.get("PIXELFORGE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))


@pytest.fixture(scope="module")
def browser():
    tried = []
    candidates = [os.environ.get("PIXELFORGE_CHROMIUM") or "", None,  # None: Playwright's own Chromium
                  *(shutil.which(n) or "" for n in ("chromium", "chromium-browser", "google-chrome"))]
    with playwright_api.sync_playwright() as p:
        for exe in dict.fromkeys(c for c in candidates if c != ""):
            try:
                b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
            except Exception as e:  # noqa: BLE001 - any launch failure means: try the next browser
                tried.append(f"{exe or 'playwright chromium'}: {str(e).splitlines()[0]}")
                continue
            yield b
            b.close()
            return
    pytest.skip("no headless Chromium could be started (run `make browser` or apt-get install chromium); tried: "
                + "; ".join(tried))


@pytest.fixture
def page(browser, live_server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(live_server + "/")
    pg.wait_for_selector("nav button[data-tab=generate]")
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"studio_{name}.png"), full_page=True)


def wait_images(pg, form: str, count: int = 1):
    """Wait until ``count`` result images of ``form`` have loaded with real pixels; return them."""
    sel = f"form[data-action={form}] .result img"
    pg.wait_for_function(f"""() => {{ const im = [...document.querySelectorAll("{sel}")];
        return im.length >= {count} && im.every(i => i.complete && i.naturalWidth > 0); }}""", timeout=120_000)
    return pg.locator(sel)


def test_open_page_and_generate(page):
    tabs = page.locator("nav button").all_inner_texts()
    assert tabs[:2] == ["Generate", "Inpaint"] and "Runs" in tabs
    page.select_option("#generate-sample-model", "gan")
    assert page.is_visible("#generate-sample-label")  # conditional run: the class choice appears
    assert not page.is_visible("#generate-sample-steps")  # steps are for diffusion runs
    page.fill("#generate-sample-n", "20")
    page.select_option("#generate-sample-label", "3")
    page.click("form[data-action=sample] button.go")
    imgs = wait_images(page, "sample")
    assert imgs.first.evaluate("i => i.naturalWidth") == 5 * 30 + 2
    assert page.locator("form[data-action=sample] .result a[download]").count() == 1
    shot(page, "generate")


def test_generate_with_diffusion_steps_and_guidance(page):
    page.select_option("#generate-sample-model", "diffusion")
    assert page.is_visible("#generate-sample-steps") and page.is_visible("#generate-sample-guidance")
    page.fill("#generate-sample-n", "4")
    page.fill("#generate-sample-steps", "3")
    page.click("form[data-action=sample] button.go")
    wait_images(page, "sample")
    assert "steps" in page.inner_text("form[data-action=sample] .result table")


def test_latent_interpolation_animation(page):
    page.fill("#generate-interpolate-rows", "4")
    page.fill("#generate-interpolate-frames", "8")
    page.click("form[data-action=interpolate] button.go")
    img = wait_images(page, "interpolate").first
    assert img.get_attribute("src").endswith(".gif")


def test_inpaint_with_a_drawn_mask(page, png_bytes, tmp_path):
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(64, 64))
    page.click("nav button[data-tab=inpaint]")
    page.set_input_files("#inpaint-inpaint-image", str(image))
    page.wait_for_timeout(200)
    box = page.locator("canvas[data-mask=inpaint-inpaint]").bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 190, box["y"] + 190, steps=12)
    page.mouse.up()
    page.fill("#inpaint-inpaint-steps", "4")
    page.click("form[data-action=inpaint] button.go")
    wait_images(page, "inpaint", 3)
    assert "PSNR vs original" in page.inner_text("form[data-action=inpaint] .result table")
    shot(page, "inpaint")


def test_errors_are_messages_in_the_page(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.click("nav button[data-tab=classify]")
    # the model list fills in from the server: under load, clicking before it did sent no model
    page.wait_for_function("() => document.querySelector('#classify-classify-model').value")
    page.set_input_files("#classify-classify-image", str(bad))
    page.click("form[data-action=classify] button.go")
    page.wait_for_selector("form[data-action=classify] .error")
    assert "not an image" in page.inner_text("form[data-action=classify] .error")
    # Inpainting without drawing a region: a message, and the page keeps working afterwards.
    page.click("nav button[data-tab=inpaint]")
    page.click("form[data-action=inpaint] button.go")
    page.wait_for_selector("form[data-action=inpaint] .error")
    shot(page, "error")
    page.click("nav button[data-tab=generate]")
    page.click("form[data-action=sample] button.go")
    wait_images(page, "sample")


def test_compress_a_photo_with_the_shipped_codec(page, tmp_path):
    from .conftest import photo_image

    photo = tmp_path / "photo.png"
    photo_image(96, 128).save(photo)
    page.click("nav button[data-tab=compress]")
    page.wait_for_selector("#compress-compress-model option[value='zoo:photos-codec-v1']", state="attached")
    assert page.input_value("#compress-compress-model") == "zoo:photos-codec-v1"  # works out of the box
    page.set_input_files("#compress-compress-image", str(photo))
    page.click("form[data-action=compress] button.go")
    assert wait_images(page, "compress", 3).count() == 3
    table = page.inner_text("form[data-action=compress] .result table")
    assert "PSNR pixelforge" in table and "PSNR JPEG" in table
    shot(page, "compress")


def test_the_overfitted_codec_job_shows_its_progress_then_the_result(page, tmp_path):
    from .conftest import photo_image

    photo = tmp_path / "photo.png"
    photo_image(48, 64).save(photo)
    page.click("nav button[data-tab=compress]")
    page.set_input_files("#compress-overfit-image", str(photo))
    page.select_option("#compress-overfit-effort", "fast")
    page.click("form[data-action=overfit] button.go")
    page.wait_for_selector("form[data-action=overfit] .result progress", state="attached")
    assert wait_images(page, "overfit", 3).count() == 3
    table = page.inner_text("form[data-action=overfit] .result table")
    assert "overfit" in table and "PSNR JPEG" in table


def test_upscale_a_photo_with_the_shipped_x4_model(page, tmp_path):
    from .conftest import photo_image

    photo = tmp_path / "photo.png"
    photo_image(80, 96).save(photo)
    page.click("nav button[data-tab=upscale]")
    page.wait_for_selector("#upscale-upscale-model option[value='zoo:photos-sr-x4-v1']", state="attached")
    assert page.input_value("#upscale-upscale-model") == "zoo:photos-sr-x4-v1"  # works out of the box
    assert page.is_checked("#upscale-upscale-reference")
    page.set_input_files("#upscale-upscale-image", str(photo))
    page.click("form[data-action=upscale] button.go")
    imgs = wait_images(page, "upscale", 3)
    assert [imgs.nth(i).evaluate("i => i.naturalWidth") for i in range(3)] == [24, 96, 96]
    table = page.inner_text("form[data-action=upscale] .result table")
    assert "PSNR model" in table and "PSNR bicubic" in table and "x4" in table
    shot(page, "upscale")
    # A run instead of the shipped model, and the upload itself (no reference).
    page.select_option("#upscale-upscale-model", "sr")
    page.uncheck("#upscale-upscale-reference")
    page.click("form[data-action=upscale] button.go")
    page.wait_for_function("""() => document.querySelector("form[data-action=upscale] .result table")
        ?.innerText.includes("192x160")""", timeout=120_000)
    assert "PSNR" not in page.inner_text("form[data-action=upscale] .result table")


def test_restore_denoise_and_fill_a_drawn_region(page, tmp_path):
    from PIL import Image

    from pixelforge.data import load_dataset

    digit = tmp_path / "digit.png"
    Image.fromarray(load_dataset("digits", size=28, split="test", limit=1).images[0, 0].numpy()).save(digit)
    page.click("nav button[data-tab=restore]")
    page.wait_for_selector("#restore-denoise-model option[value=ae]", state="attached")
    page.select_option("#restore-denoise-model", "ae")
    assert not page.is_visible("#restore-denoise-label")  # unconditional run: no class choice
    page.set_input_files("#restore-denoise-image", str(digit))
    page.fill("#restore-denoise-noise", "0.3")
    page.click("form[data-action=denoise] button.go")
    wait_images(page, "denoise", 2)
    assert "PSNR restored" in page.inner_text("form[data-action=denoise] .result table")
    # A conditional run shows the class choice, with a blank that asks for the image's class.
    page.select_option("#restore-denoise-model", "cvae")
    assert page.is_visible("#restore-denoise-label")
    assert page.locator("#restore-denoise-label option").first.inner_text() == "choose the image's class"
    page.select_option("#restore-denoise-model", "ae")

    page.select_option("#restore-fill-model", "ae")
    page.set_input_files("#restore-fill-image", str(digit))
    page.wait_for_timeout(200)
    box = page.locator("canvas[data-mask=restore-fill]").bounding_box()
    page.mouse.move(box["x"] + 70, box["y"] + 70)
    page.mouse.down()
    page.mouse.move(box["x"] + 170, box["y"] + 170, steps=10)
    page.mouse.up()
    page.click("form[data-action=fill] button.go")
    wait_images(page, "fill", 3)
    assert "PSNR with the hole" in page.inner_text("form[data-action=fill] .result table")
    shot(page, "restore")


def test_runs_loss_curves_sample_history_and_metrics(page):
    page.click("nav button[data-tab=runs]")
    page.click("tr[data-run=gan]")
    page.wait_for_selector("svg[data-metric=g_loss] circle")  # one logged point here: a dot
    assert page.locator(".metric-table tr").count() > 2
    img = page.locator("img.history-image")
    page.wait_for_function("() => { const i = document.querySelector('img.history-image'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    assert img.get_attribute("src").endswith("epoch_002.png")
    page.locator(".history input[type=range]").fill("0")
    assert img.get_attribute("src").endswith("epoch_001.png")
    shot(page, "runs")
    page.click("tr[data-study=augment]")
    page.wait_for_function("() => { const i = document.querySelector('img.study-plot'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    assert page.locator(".study-table").count() == 2
    assert "target gain >= +2%: met" in page.inner_text(".run-detail")
    shot(page, "augmentation_study")


def test_style_transfer_and_texture(page, tmp_path):
    from .conftest import photo_image
    from .test_style import stripes

    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    photo_image(60, 80).save(photo)
    stripes(64, 64).save(painting)
    page.click("nav button[data-tab=style]")
    assert page.locator("section[data-tab=style] .unavailable").count() == 0
    assert page.input_value("#style-stylize-method") == "lbfgs"
    page.set_input_files("#style-stylize-content", str(photo))
    page.set_input_files("#style-stylize-style", str(painting))
    page.fill("#style-stylize-size", "48")
    page.fill("#style-stylize-steps", "10")
    page.fill("#style-stylize-strength", "10")
    page.click("form[data-action=stylize] button.go")
    imgs = wait_images(page, "stylize", 3)
    captions = page.locator("form[data-action=stylize] .result figcaption span").all_inner_texts()
    assert captions == ["content", "style", "result"]
    assert [imgs.nth(i).evaluate("i => i.naturalWidth") for i in range(3)] == [48, 48, 48]
    assert "compare" in page.get_attribute("form[data-action=stylize] .result", "class")
    table = page.inner_text("form[data-action=stylize] .result table")
    assert "final style error" in table and "48x36" in table
    shot(page, "style")
    # Over the limit: a message in the page, no work.
    page.fill("#style-stylize-size", "512")
    page.fill("#style-stylize-steps", "500")
    page.click("form[data-action=stylize] button.go")
    page.wait_for_selector("form[data-action=stylize] .error")
    assert "too much work" in page.inner_text("form[data-action=stylize] .error")
    # A texture from the style image alone.
    page.set_input_files("#style-texture-style", str(painting))
    page.fill("#style-texture-size", "32")
    page.fill("#style-texture-steps", "10")
    page.click("form[data-action=texture] button.go")
    imgs = wait_images(page, "texture", 2)
    assert imgs.nth(1).evaluate("i => i.naturalWidth") == 32
