"""How fast the studio answers on this machine, and the screenshots in docs/studio.md.

    python benchmarks/studio_latency.py RUNS_DIR [--gan NAME] [--diffusion NAME] [--screenshots docs/images]

Starts `pixelforge serve`'s app on 127.0.0.1, then times (median of several) the page, a
64-image GAN grid, a 16-image diffusion grid at 25 steps and 50 steps, and 20 parallel
mixed requests; with --screenshots, drives headless Chromium through Upscale (the shipped x4
model on a photo from $PIXELFORGE_DATA/photos), Generate, Inpaint and Runs and saves
studio_*.png (--only-screenshots: no timings; without the GAN run only the Upscale picture).
Run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import write_results  # noqa: E402


def start(runs: Path):
    import uvicorn

    from pixelforge.web import Studio, create_app

    studio = Studio(runs, tempfile.mkdtemp(prefix="studio-bench-"), busy_timeout=600)
    server = uvicorn.Server(uvicorn.Config(create_app(studio), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def screenshots(base: str, out: Path, gan: str | None, diffusion: str | None) -> None:
    """Drive the page and save studio_*.png; the Generate, Inpaint and Runs pictures need the
    GAN (and diffusion) run, the Upscale picture only the shipped x4 model and a photo."""
    from playwright.sync_api import sync_playwright
    from PIL import Image

    import pixelforge
    from pixelforge.data import search_path

    tmp = Path(tempfile.mkdtemp())
    loaded = "() => [...document.querySelectorAll('form[data-action=%s] .result img')].every(i => i.complete && i.naturalWidth > 0) && document.querySelector('form[data-action=%s] .result img')"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True)
        pg = b.new_page(viewport={"width": 1280, "height": 860})
        pg.goto(base + "/")
        pg.wait_for_selector("#generate-sample-model")
        photo = next((d / "photos" / "garden.png" for d in search_path()
                      if (d / "photos" / "garden.png").is_file()), None)
        if photo is not None:  # a 320x240 crop of a photo held out of the shipped model's training:
            # shrunk x4 to 80x60, upscaled back, PSNR against the crop
            with Image.open(photo) as im:
                w, h = im.size
                im.convert("RGB").crop((w // 2 - 160, h // 2 - 120, w // 2 + 160, h // 2 + 120)).save(tmp / "photo.png")
            pg.click("nav button[data-tab=upscale]")
            pg.wait_for_selector("#upscale-upscale-model option[value='zoo:photos-sr-x4-v1']", state="attached")
            pg.set_input_files("#upscale-upscale-image", str(tmp / "photo.png"))
            pg.click("form[data-action=upscale] button.go")
            pg.wait_for_function(loaded % ("upscale", "upscale"), timeout=300_000)
            pg.screenshot(path=str(out / "studio_upscale.png"), full_page=True)
            pg.click("nav button[data-tab=generate]")
        if gan is None:
            b.close()
            return
        img = tmp / "sneaker.png"
        test = pixelforge.load_dataset("fashion-mnist", split="test")
        idx = int((test.labels == 7).nonzero()[0])  # a sneaker
        Image.fromarray(test.images[idx, 0].numpy()).resize((112, 112), Image.NEAREST).save(img)
        pg.select_option("#generate-sample-model", gan)
        pg.fill("#generate-sample-n", "40")
        pg.click("form[data-action=sample] button.go")
        pg.wait_for_function(loaded % ("sample", "sample"), timeout=300_000)
        pg.select_option("#generate-interpolate-model", gan)
        pg.fill("#generate-interpolate-rows", "5")
        pg.click("form[data-action=interpolate] button.go")
        pg.wait_for_function(loaded % ("interpolate", "interpolate"), timeout=300_000)
        pg.screenshot(path=str(out / "studio_generate.png"))
        if diffusion:
            pg.click("nav button[data-tab=inpaint]")
            pg.select_option("#inpaint-inpaint-model", diffusion)
            pg.set_input_files("#inpaint-inpaint-image", str(img))
            pg.wait_for_timeout(300)
            box = pg.locator("canvas[data-mask=inpaint-inpaint]").bounding_box()
            pg.mouse.move(box["x"] + 130, box["y"] + 110)
            pg.mouse.down()
            pg.mouse.move(box["x"] + 220, box["y"] + 170, steps=10)
            pg.mouse.up()
            pg.select_option("#inpaint-inpaint-label", "Sneaker")
            pg.click("form[data-action=inpaint] button.go")
            pg.wait_for_function(loaded % ("inpaint", "inpaint"), timeout=300_000)
            pg.screenshot(path=str(out / "studio_inpaint.png"), full_page=True)
        pg.set_viewport_size({"width": 1280, "height": 1300})
        pg.click("nav button[data-tab=runs]")
        pg.click(f"tr[data-run='{gan}']")
        pg.wait_for_selector("img.history-image")
        pg.wait_for_timeout(800)
        pg.screenshot(path=str(out / "studio_runs.png"))
        b.close()


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path)
    ap.add_argument("--gan", default="fashion-gan")
    ap.add_argument("--diffusion", default="fashion-diffusion")
    ap.add_argument("--screenshots", type=Path)
    ap.add_argument("--only-screenshots", action="store_true", help="no timings (need not wait for the CPU lock)")
    args = ap.parse_args()
    import httpx

    server, base = start(args.runs)
    c = httpx.Client(base_url=base, timeout=600)
    diffusion = args.diffusion if (args.runs / args.diffusion / "config.json").is_file() else None

    def ok(r):
        assert r.status_code == 200, r.text
        return r

    if args.only_screenshots:
        gan = args.gan if (args.runs / args.gan / "config.json").is_file() else None
        screenshots(base, args.screenshots, gan, diffusion)
        print(f"screenshots in {args.screenshots}")
        return

    rows = {"page (GET /)": timed(lambda: ok(c.get("/")), 20),
            "tab table (GET /api/tabs)": timed(lambda: ok(c.get("/api/tabs")), 20),
            f"run details ({args.gan})": timed(lambda: ok(c.get(f"/api/runs/{args.gan}")), 10)}
    ok(c.post("/api/tabs/generate/sample", data={"model": args.gan, "n": "1"}))  # load the model once
    rows["GAN grid, 64 images"] = timed(lambda: ok(c.post("/api/tabs/generate/sample",
                                                         data={"model": args.gan, "n": "64"})), 5)
    rows["GAN latent walk, 8x48 frames (GIF)"] = timed(lambda: ok(c.post("/api/tabs/generate/interpolate",
                                                                        data={"model": args.gan})), 3)
    if diffusion:
        for steps in (25, 50):
            rows[f"diffusion grid, 16 images, {steps} steps"] = timed(lambda s=steps: ok(c.post(
                "/api/tabs/generate/sample", data={"model": diffusion, "n": "16", "steps": str(s)})), 3)

    def one(i):
        with httpx.Client(base_url=base, timeout=600) as cc:
            if i % 2:
                return cc.post("/api/tabs/generate/sample", data={"model": args.gan, "n": "16", "seed": str(i)}).status_code
            return cc.get(f"/api/runs/{args.gan}").status_code

    t = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    rows["20 parallel requests (10 GAN grids + 10 run pages), wall"] = time.perf_counter() - t
    answered = sum(code == 200 for code in codes)
    print(f"{'request':<58} {'seconds':>8}")
    for k, v in rows.items():
        print(f"{k:<58} {v:8.3f}")
    print(f"20 parallel requests: {answered}/20 answered with 200")
    write_results("studio_latency", {"seconds": {k: round(v, 4) for k, v in rows.items()},
                                     "parallel_answered": answered})
    if args.screenshots:
        screenshots(base, args.screenshots, args.gan, diffusion)
        print(f"screenshots in {args.screenshots}")
    server.should_exit = True


if __name__ == "__main__":
    main()
