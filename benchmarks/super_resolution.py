"""Super-resolution on photos the models never saw: PSNR and SSIM on the Y channel against
bicubic, per image and on average, and time per output megapixel on this machine.

    # train and ship the weights (the project's own command; run under the shared lock)
    PIXELFORGE_DATA=../shared/data python benchmarks/super_resolution.py train --scale 4 --minutes 12
    PIXELFORGE_DATA=../shared/data python benchmarks/super_resolution.py train --scale 2 --minutes 12
    # evaluate the shipped weights
    PIXELFORGE_DATA=../shared/data python benchmarks/super_resolution.py

Protocol: each held-out photo (full size, cropped to a multiple of the scale) is the
ground truth; its low-resolution version is made by the same degradation as in training
(``F.interpolate(mode="bicubic", antialias=True)``) and stored as 8-bit; bicubic upsampling
(``F.interpolate(mode="bicubic")``) and the network both restore it, and both outputs are
8-bit too. PSNR and SSIM (11x11 Gaussian window) are computed on Y of ITU-R BT.601 YCbCr
(Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1], divided by 255), with
``scale`` pixels cropped from every border, the usual convention of SR papers. Targets from
issue #8: x4 >= +1.0 dB over bicubic on average, x2 >= +1.5 dB.

Writes benchmarks/results/super_resolution.json, docs/images/sr_x2.png and sr_x4.png (crops
side by side), and the metrics into the shipped models' cards.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import write_results

from pixelforge.images import pyplot, save_figure
from pixelforge.metrics.image_quality import psnr, ssim
from pixelforge.models.sr import downscale, upscale_bicubic
from pixelforge.pipelines.sr import SHIPPED, export_sr, load_shipped_sr, read_image, to_tensor
from pixelforge.zoo import ZOO_DIR

ROOT = Path(__file__).resolve().parents[1]
# Photos of $PIXELFORGE_DATA/photos kept out of training: a structure, a texture, a flower, a close-up.
HELD_OUT = ("dune", "garden", "grey", "raindrops")
RECIPE = {"arch": "edsr", "width": 32, "blocks": 6, "size": 640, "batch-size": 16}
CROP = {2: 64, 4: 96}  # high-resolution training crops: 32 and 24 px low-resolution inputs
CROPS = {"grey": (300, 180), "dune": (420, 60)}  # (x, y) of the side-by-side crops, in HR pixels


def photos_dir() -> Path:
    root = os.environ.get("PIXELFORGE_DATA")
    if not root or not (Path(root) / "photos").is_dir():
        sys.exit("set PIXELFORGE_DATA to the folder holding photos/")
    return Path(root) / "photos"


def train(scale: int, minutes: float) -> None:
    """Train with `pixelforge train sr` on the photos not held out, then ship the weights."""
    folder = ROOT / "runs" / "sr-photos-train"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for photo in sorted(photos_dir().glob("*.png")):
        if photo.stem not in HELD_OUT:
            (folder / photo.name).symlink_to(photo)
    run = ROOT / "runs" / f"sr-x{scale}"
    args = ["train", "sr", "--data", f"folder:{folder.relative_to(ROOT)}", "--scale", str(scale),
            *[a for k, v in RECIPE.items() for a in (f"--{k}", str(v))], "--crop", str(CROP[scale]), "--minutes", f"{minutes:g}",
            "--run-dir", str(run.relative_to(ROOT)), "--overwrite", "--no-progress"]
    command = "pixelforge " + shlex.join(args)
    print(command)
    # One thread: on this shared 2-core machine two OpenMP threads spin-wait against other jobs'
    # processes and a step takes 8x longer; alone, one thread is ~1.5x slower than two.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = "OMP_NUM_THREADS=1 " + command
    subprocess.run([sys.executable, "-m", "pixelforge.cli", *args], check=True, cwd=ROOT, env=env)
    training_photos = sorted(p.stem for p in folder.iterdir())
    path = export_sr(run, SHIPPED[scale], command, extra={
        "training_photos": training_photos, "held_out_photos": list(HELD_OUT)})
    print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB)")


def y_channel(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) BT.601 luma in [16/255, 235/255]."""
    w = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return ((rgb * w).sum(1, keepdim=True) + 16) / 255


def quantise(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


def score(pred: torch.Tensor, hr: torch.Tensor, border: int) -> tuple[float, float]:
    a = y_channel(pred[None])[..., border:-border, border:-border]
    b = y_channel(hr[None])[..., border:-border, border:-border]
    return float(psnr(a, b)[0]), float(ssim(a, b)[0])


def evaluate(scale: int) -> dict:
    pipe = load_shipped_sr(SHIPPED[scale], device="cpu")
    rows, crops = [], {}
    for name in HELD_OUT:
        hr = to_tensor(read_image(photos_dir() / f"{name}.png"))
        h, w = hr.shape[1] // scale * scale, hr.shape[2] // scale * scale
        hr = hr[:, :h, :w]
        lr = quantise(downscale(hr[None], scale))[0]
        t = time.perf_counter()
        bic = quantise(upscale_bicubic(lr[None], scale)[0])
        t_bic = time.perf_counter() - t
        t = time.perf_counter()
        sr = quantise(pipe.upscale_tensor(lr))
        t_sr = time.perf_counter() - t
        mp = h * w / 1e6
        (p_b, s_b), (p_s, s_s) = score(bic, hr, scale), score(sr, hr, scale)
        rows.append({"image": name, "size": f"{w}x{h}", "psnr_bicubic": round(p_b, 3), "psnr_sr": round(p_s, 3),
                     "gain_db": round(p_s - p_b, 3), "ssim_bicubic": round(s_b, 4), "ssim_sr": round(s_s, 4),
                     "seconds_per_output_mp": round(t_sr / mp, 3), "bicubic_seconds_per_output_mp": round(t_bic / mp, 4)})
        if name in CROPS:
            x0, y0 = CROPS[name]
            c = 192
            crops[name] = [v[:, y0:y0 + c, x0:x0 + c] for v in (upscale_nearest(lr, scale), bic, sr, hr)]
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 4)
            for k in ("psnr_bicubic", "psnr_sr", "gain_db", "ssim_bicubic", "ssim_sr", "seconds_per_output_mp")}
    target = {2: 1.5, 4: 1.0}[scale]
    return {"scale": scale, "model": SHIPPED[scale], "per_image": rows, "mean": mean, "target_gain_db": target,
            "target_met": mean["gain_db"] >= target, "crops": crops}


def upscale_nearest(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return lr.repeat_interleave(scale, 1).repeat_interleave(scale, 2)


def side_by_side(result: dict, path: Path) -> Path:
    plt = pyplot()
    crops = result["crops"]
    titles = ["input (nearest)", "bicubic", f"pixelforge {result['model']}", "original"]
    fig, axes = plt.subplots(len(crops), 4, figsize=(12, 3.1 * len(crops)), dpi=100, squeeze=False)
    for row, (name, views) in zip(axes, crops.items()):
        per = {r["image"]: r for r in result["per_image"]}[name]
        for ax, title, v in zip(row, titles, views):
            ax.imshow(v.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            extra = ""
            if title == "bicubic":
                extra = f"\n{per['psnr_bicubic']:.2f} dB"
            elif title.startswith("pixelforge"):
                extra = f"\n{per['psnr_sr']:.2f} dB"
            ax.set_title(f"{name}: {title}{extra}" if title.startswith("input") else title + extra, fontsize=10)
            ax.axis("off")
    fig.suptitle(f"x{result['scale']} super-resolution of held-out photos (Y-PSNR of the whole photo)")
    return save_figure(fig, path)


def large_image(scale: int, width: int = 4000, height: int = 3000) -> dict:
    """`pixelforge upscale` (the CLI, PNG writing included) on a width x height photo, in a child
    process whose peak memory is measured: tiling keeps it near the size of the output image."""
    import resource
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "large.png", Path(tmp) / "large_up.png"
        read_image(photos_dir() / f"{HELD_OUT[0]}.png").resize((width, height), Image.Resampling.BICUBIC).save(src)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pixelforge.cli", "upscale", str(src), "--scale", str(scale),
                        "-o", str(out)], check=True, env=env)
        seconds = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        Image.MAX_IMAGE_PIXELS = None  # our own 192 MP output: PIL's bomb check would refuse to open it
        size = Image.open(out).size
    out_mp = size[0] * size[1] / 1e6
    return {"input": f"{width}x{height}", "output": f"{size[0]}x{size[1]}", "seconds": round(seconds, 1),
            "seconds_per_output_mp": round(seconds / out_mp, 3), "peak_rss_mb": round(peak_mb),
            "output_uint8_mb": round(out_mp * 3), "note": "wall time of the whole command: load, tiles, PNG encoding"}


def benchmark(large: bool) -> None:
    results = {}
    for scale in sorted(SHIPPED):
        r = evaluate(scale)
        side_by_side(r, ROOT / "docs" / "images" / f"sr_x{scale}.png")
        r.pop("crops")
        results[f"x{scale}"] = r
        print(f"\nx{scale} ({r['model']}), Y channel, {scale} px border cropped")
        print(f"{'image':<12} {'bicubic dB':>10} {'SR dB':>8} {'gain':>6} {'SSIM bic':>9} {'SSIM SR':>8} {'s/MP':>6}")
        for row in r["per_image"] + [{"image": "mean", **r["mean"]}]:
            print(f"{row['image']:<12} {row['psnr_bicubic']:>10.2f} {row['psnr_sr']:>8.2f} {row['gain_db']:>+6.2f} "
                  f"{row['ssim_bicubic']:>9.4f} {row['ssim_sr']:>8.4f} {row['seconds_per_output_mp']:>6.3f}")
        print(f"target >= +{r['target_gain_db']} dB: {'met' if r['target_met'] else 'missed'}")
        card = ZOO_DIR / f"{r['model']}.json"
        info = json.loads(card.read_text())
        info["benchmark"] = {"held_out_photos": list(HELD_OUT), "protocol": "Y channel (BT.601), border = scale px, "
                             "LR by antialiased bicubic, 8-bit", "mean": r["mean"]}
        card.write_text(json.dumps(info, indent=2) + "\n")
    if large:
        results["large_image_x4"] = big = large_image(4)
        print(f"\nlarge image: {big['input']} -> {big['output']} in {big['seconds']} s, peak memory "
              f"{big['peak_rss_mb']} MB (the uint8 output alone is {big['output_uint8_mb']} MB)")
    sizes = {k: round((ZOO_DIR / f"{v}.safetensors").stat().st_size / 1e6, 3) for k, v in SHIPPED.items()}
    write_results("super_resolution", {
        "held_out_photos": list(HELD_OUT), "threads": torch.get_num_threads(),
        "degradation": "F.interpolate(mode='bicubic', antialias=True), 8-bit LR",
        "metric": "PSNR/SSIM on Y (BT.601), border of scale px cropped; SR and bicubic outputs 8-bit",
        "shipped_weights_mb": sizes, **results})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode")
    t = sub.add_parser("train", help="train and ship the weights for one scale")
    t.add_argument("--scale", type=int, choices=sorted(SHIPPED), required=True)
    t.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--no-large", action="store_true", help="skip the 4000x3000 x4 upscale")
    args = ap.parse_args()
    if args.mode == "train":
        train(args.scale, args.minutes)
    else:
        benchmark(large=not args.no_large)


if __name__ == "__main__":
    main()
