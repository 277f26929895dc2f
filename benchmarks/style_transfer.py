"""Style transfer and texture synthesis with the offline backbone on the shared photos and styles.

    PIXELFORGE_DATA=/work/shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/style_transfer.py \
        --stylizer runs/stylizer-mosaic --adain runs/adain [--gallery]

``--gallery``: the Gatys gallery (each generation the exact library call behind ``pixelforge stylize`` /
``pixelforge texture``, defaults except --size and --steps) -> docs/images/style_*.png; without it the
gallery rows of the previous results file are kept. ``--stylizer``/``--adain``: the learned methods
(trained as in docs/style_transfer.md): time per 512x512 image for Gatys (``--gatys-steps`` L-BFGS steps),
the feed-forward net (torch fp32, torch bf16 + channels_last, ONNX Runtime; also Johnson's original
size, untrained, for speed only) and AdaIN (same three), the relative content and style errors of
every method on held-out photos, and the picture sheet docs/images/style_sheet.png (content x
method/style). Writes benchmarks/results/style_transfer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from pixelforge.data import load_image  # noqa: E402
from pixelforge.images import save_grid  # noqa: E402
from pixelforge.pipelines.style import load_rgb, stylize, synthesize_texture  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def _fit(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image[None], size=like.shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


def gallery(args, photos: Path, styles: Path) -> list[dict]:
    rows = []

    def run(name, fn, *a, **kw):
        start = time.perf_counter()
        result = fn(*a, size=args.size, steps=args.steps, progress=False, **kw)
        seconds = time.perf_counter() - start
        last = result.history[-1]
        rows.append({"name": name, "seconds": round(seconds, 1), "size": list(result.image.shape[1:]),
                     "steps": args.steps, **{k: round(last[k], 4) for k in ("content", "style", "tv")}})
        print(f"{name:<40} {seconds:6.1f} s  content {last['content']:.3f}  style {last['style']:.3f}", flush=True)
        return result.image

    pairs = [("garden", ["udnie", "mosaic"]), ("bythewater", ["kokkini", "licorice"])]
    for photo, style_names in pairs:
        content = load_rgb(photos / f"{photo}.png", args.size)
        panels, labels = [content], [photo]
        for style in style_names:
            name = f"{photo} x {style}"
            panels += [_fit(load_rgb(styles / f"{style}.png", args.size), content),
                       run(name, stylize, photos / f"{photo}.png", styles / f"{style}.png")]
            labels += [style, name]
        save_grid(torch.stack(panels), DOCS / f"style_{photo}.png", nrow=len(panels), columns=labels)

    content = load_rgb(photos / "garden.png", args.size)
    panels = [content,
              run("garden x mosaic, preserve colour", stylize, photos / "garden.png", styles / "mosaic.png",
                  preserve_color=True),
              run("garden x udnie 0.5 + mosaic 0.5", stylize, photos / "garden.png",
                  [styles / "udnie.png", styles / "mosaic.png"], style_mix=[0.5, 0.5])]
    save_grid(torch.stack(panels), DOCS / "style_color_and_mix.png", nrow=len(panels),
              columns=["garden", *(r["name"] for r in rows[-2:])])

    panels, labels = [], []
    for style in ("truchet", "honeywave"):
        example = load_rgb(styles / f"{style}.png", args.size)
        square = F.interpolate(example[None], size=(args.size, args.size), mode="bilinear", antialias=True)[0]
        panels += [square, run(f"texture {style}", synthesize_texture, styles / f"{style}.png")]
        labels += [f"{style} (example)", rows[-1]["name"]]
    save_grid(torch.stack(panels), DOCS / "style_textures.png", nrow=len(panels), columns=labels)
    return rows


# ----------------------------------------------------------------------------- learned methods

HELD_OUT_PHOTOS = ("garden", "bythewater", "volna")  # not in the training folder of the stylizer / AdaIN runs
TRAINED_STYLE = "mosaic"  # the feed-forward net's style (also among AdaIN's training styles)
HELD_OUT_STYLE = "udnie"  # not among AdaIN's training styles


def square(path: Path, size: int) -> torch.Tensor:
    """(3, size, size) floats in [0, 1]: shorter side resized to ``size``, centre crop."""
    return load_image(path, size=size, channels=3).float() / 255


def per_image_seconds(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def learned(args, photos: Path, styles: Path) -> dict:
    from pixelforge.pipelines.style import relative_losses
    from pixelforge.pipelines.stylizer import OnnxStylizer, StylizerPipeline, export_onnx, load_stylizer
    from pixelforge.registry import create_model

    size, repeats = 512, args.repeats
    content = square(photos / f"{HELD_OUT_PHOTOS[0]}.png", size)
    mosaic, udnie = load_rgb(styles / f"{TRAINED_STYLE}.png", size), load_rgb(styles / f"{HELD_OUT_STYLE}.png", size)
    tmp = Path(tempfile.mkdtemp())
    speed, outputs = [], {}

    def timed(method, runtime, seconds, note=""):
        row = {"method": method, "runtime": runtime, "seconds_per_512x512": round(seconds, 4),
               "meets_0.15s": seconds <= 0.15}
        if note:
            row["note"] = note
        speed.append(row)
        print(f"{method:<34} {runtime:<22} {seconds:7.3f} s  {'meets' if seconds <= 0.15 else 'misses'} 0.15 s"
              + (f"  ({note})" if note else ""), flush=True)

    # Gatys: the optimisation itself, a few L-BFGS steps at 512x512.
    start = time.perf_counter()
    result = stylize(content, styles / f"{TRAINED_STYLE}.png", size=size, steps=args.gatys_steps, progress=False)
    seconds = time.perf_counter() - start
    outputs["gatys"] = result.image
    timed("Gatys (offline backbone)", f"torch fp32, {args.gatys_steps} L-BFGS", seconds,
          f"{seconds / args.gatys_steps:.2f} s per step; the default 300 steps would take ~{seconds / args.gatys_steps * 300:.0f} s")

    pipelines = {}
    for kind, run in (("feed-forward", args.stylizer), ("adain", args.adain)):
        if run is None:
            continue
        fp32 = load_stylizer(run, device="cpu", precision="fp32")
        bf16 = load_stylizer(run, device="cpu", precision="bf16")
        onnx_file = export_onnx(fp32, tmp / f"{kind}.onnx")
        ort = OnnxStylizer(onnx_file, threads=torch.get_num_threads())
        pipelines[kind] = fp32
        style = None if kind == "feed-forward" else mosaic
        label = (f"feed-forward {fp32.net.cfg.widths}, {fp32.net.cfg.blocks} blocks, shuffle {fp32.net.cfg.shuffle}"
                 if kind == "feed-forward" else f"AdaIN (encoder {fp32.net.cfg.layer}, decoder {fp32.net.cfg.widths})")
        for name, pipe in (("torch fp32", fp32), ("torch bf16 channels_last", bf16), ("onnxruntime", ort)):
            timed(label, name, per_image_seconds(lambda p=pipe, s=style: p.run_tensor(content, s), repeats))
        outputs[kind] = fp32.run_tensor(content, style)
        outputs[f"{kind} bf16"] = bf16.run_tensor(content, style)
        outputs[f"{kind} onnx"] = ort.run_tensor(content, style)
    # Johnson's original size, untrained: only its speed matters here.
    original = StylizerPipeline(create_model("johnson", widths=(32, 64, 128), blocks=5, outer_kernel=9, shuffle=1))
    timed("Johnson's original net (32,64,128), 5 blocks, 9x9", "torch fp32",
          per_image_seconds(lambda: original.run_tensor(content), max(3, repeats // 3)), "untrained; speed only")
    original_bf16 = StylizerPipeline(original.net, precision="bf16")
    timed("Johnson's original net (32,64,128), 5 blocks, 9x9", "torch bf16 channels_last",
          per_image_seconds(lambda: original_bf16.run_tensor(content), max(3, repeats // 3)), "untrained; speed only")

    # Quality: relative content and style errors (the Gatys definitions) on the held-out photos.
    losses = []
    for photo in HELD_OUT_PHOTOS:
        c = square(photos / f"{photo}.png", size)
        candidates = {"content photo itself": c}
        if photo == HELD_OUT_PHOTOS[0]:
            candidates["Gatys"] = outputs["gatys"]
        if "feed-forward" in pipelines:
            candidates["feed-forward"] = pipelines["feed-forward"].run_tensor(c)
        if "adain" in pipelines:
            candidates["AdaIN alpha 1"] = pipelines["adain"].run_tensor(c, mosaic, 1.0)
            candidates["AdaIN alpha 0.5"] = pipelines["adain"].run_tensor(c, mosaic, 0.5)
        for method, image in candidates.items():
            value = relative_losses(image, c, styles / f"{TRAINED_STYLE}.png", size=size)
            losses.append({"photo": photo, "style": TRAINED_STYLE, "method": method,
                           **{k: round(v, 4) for k, v in value.items()}})
            print(f"{photo:<12} {method:<22} content {value['content']:.3f}  style {value['style']:.3f}", flush=True)
        if "adain" in pipelines:
            image = pipelines["adain"].run_tensor(c, udnie, 1.0)
            value = relative_losses(image, c, styles / f"{HELD_OUT_STYLE}.png", size=size)
            base = relative_losses(c, c, styles / f"{HELD_OUT_STYLE}.png", size=size)
            for method, v in (("content photo itself", base), ("AdaIN alpha 1 (held-out style)", value)):
                losses.append({"photo": photo, "style": HELD_OUT_STYLE, "method": method,
                               **{k: round(x, 4) for k, x in v.items()}})
            print(f"{photo:<12} AdaIN on {HELD_OUT_STYLE:<12} content {value['content']:.3f}  style {value['style']:.3f} "
                  f"(photo itself: style {base['style']:.3f})", flush=True)
    parity = {k: round(float((outputs[f"{k} onnx"] - outputs[k]).abs().max()), 6) for k in pipelines}
    parity_bf16 = {k: round(float((outputs[f"{k} bf16"] - outputs[k]).abs().max()), 4) for k in pipelines}
    print(f"max |onnx - torch fp32|: {parity}; max |bf16 - fp32|: {parity_bf16}")

    sheet(args, photos, styles, pipelines)
    training = {}
    for kind, run in (("feed-forward", args.stylizer), ("adain", args.adain)):
        if run is not None:
            records = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
            config = json.loads((Path(run) / "config.json").read_text())
            training[kind] = {"model": config["model"], "task": config["task"], "data": config["data"]["spec"],
                              "steps": records[-1]["step"], "minutes": config["train"]["minutes"],
                              "final": {k: records[-1][k] for k in ("loss", "content", "style") if k in records[-1]}}
    return {"speed_512": speed, "losses_512": losses, "onnx_max_abs_diff": parity, "bf16_max_abs_diff": parity_bf16,
            "training": training, "target_seconds": 0.15, "held_out_photos": list(HELD_OUT_PHOTOS),
            "held_out_style": HELD_OUT_STYLE}


def sheet_columns(kinds) -> list[tuple[str, str | None]]:
    """style_sheet.png's columns with the learned methods in ``kinds``: (label, the style shown above it)."""
    columns = [("content", None), ("Gatys", TRAINED_STYLE)]
    if "feed-forward" in kinds:
        columns.append(("feed-forward", TRAINED_STYLE))
    if "adain" in kinds:
        columns += [("AdaIN", TRAINED_STYLE), ("AdaIN, a style it never saw", HELD_OUT_STYLE),
                    ("AdaIN, alpha 0.5", HELD_OUT_STYLE)]
    return columns


def sheet(args, photos: Path, styles: Path, pipelines: dict) -> None:
    """docs/images/style_sheet.png: a row per held-out photo; columns content, Gatys, feed-forward and AdaIN with
    mosaic, AdaIN with the held-out udnie at alpha 1 and 0.5. The top row shows each column's style image."""
    size = 256
    columns = sheet_columns(pipelines)
    header = [torch.ones(3, size, size) if style is None else square(styles / f"{style}.png", size)
              for _, style in columns]
    panels = list(header)
    for photo in HELD_OUT_PHOTOS:
        c = square(photos / f"{photo}.png", size)
        row = [c, stylize(c, styles / f"{TRAINED_STYLE}.png", size=size, steps=args.sheet_steps, progress=False).image]
        if "feed-forward" in pipelines:
            row.append(pipelines["feed-forward"].run_tensor(c))
        if "adain" in pipelines:
            s_mosaic, s_udnie = load_rgb(styles / f"{TRAINED_STYLE}.png", 512), load_rgb(styles / f"{HELD_OUT_STYLE}.png", 512)
            row += [pipelines["adain"].run_tensor(c, s_mosaic), pipelines["adain"].run_tensor(c, s_udnie),
                    pipelines["adain"].run_tensor(c, s_udnie, 0.5)]
        panels += row
    save_grid(torch.stack(panels), DOCS / "style_sheet.png", nrow=len(header),
              columns=[label for label, _ in columns], rows=["style", *HELD_OUT_PHOTOS])
    print(f"wrote {DOCS / 'style_sheet.png'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256, help="gallery size")
    parser.add_argument("--steps", type=int, default=200, help="gallery steps")
    parser.add_argument("--gallery", action="store_true", help="(re)make the Gatys gallery")
    parser.add_argument("--stylizer", default=None, help="a feed-forward stylizer run (style mosaic)")
    parser.add_argument("--adain", default=None, help="an AdaIN run")
    parser.add_argument("--gatys-steps", type=int, default=20, help="L-BFGS steps timed at 512x512")
    parser.add_argument("--sheet-steps", type=int, default=100, help="L-BFGS steps for the sheet's Gatys column")
    parser.add_argument("--repeats", type=int, default=15, help="timed passes per method (median)")
    args = parser.parse_args()
    data = Path(os.environ.get("PIXELFORGE_DATA", "data").split(os.pathsep)[0])
    photos, styles = data / "photos", data / "styles"
    previous = {}
    path = Path(__file__).parent / "results" / "style_transfer.json"
    if path.is_file():
        previous = json.loads(path.read_text())
    figures = {"backbone": "offline", "threads": torch.get_num_threads()}
    if args.gallery:
        figures["runs"] = gallery(args, photos, styles)
    elif "runs" in previous:
        figures["runs"] = previous["runs"]
        figures["runs_from"] = previous.get("runs_from", {"date": previous.get("date"),
                                                          "machine": previous.get("machine")})
    figures.update(learned(args, photos, styles))
    write_results("style_transfer", figures)


if __name__ == "__main__":
    main()
