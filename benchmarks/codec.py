"""Rate-distortion of the learned codec against JPEG and WebP on photos it never saw.

For each held-out photo of $PIXELFORGE_DATA/photos (full size, 1024 px wide), the codec
writes real .pfc files at every quality level and Pillow writes JPEG (4:2:0, optimised
Huffman tables) and WebP (method 6) over a sweep of quality settings. Rate is the file size
in bits per pixel; distortion is RGB PSNR and MS-SSIM (torchmetrics). Curves are averaged
over the photos per setting. Reported: the table, BD-rate and BD-PSNR against JPEG
(Bjontegaard, cubic fit in log-rate), the PSNR gap to JPEG and WebP at 0.25, 0.5, 0.75 and
1.0 bpp (interpolated in log-rate), and encode/decode seconds per megapixel on this CPU.

    python benchmarks/codec.py [--model photos-codec-v1 | RUN_DIR]
    python benchmarks/codec.py --export runs/codec-v1     # ship a run as photos-codec-v1 first
    python benchmarks/codec.py --compare-sheet            # only redraw docs/images/codec_compare.png

``--compare`` measures the overfitted codec's effort presets beside the shipped amortized
codec, JPEG, WebP (method 6) and AVIF (Pillow) on centre crops of the held-out photos (the
overfitted codec fits each image, so full photos at every preset and quality take hours on a
2-core CPU); every (photo, quality, preset) result is cached in
benchmarks/results/codec_compare_cache.json, so a stopped run resumes where it stopped:

    python benchmarks/codec.py --compare [--presets fast,default,best] [--crop 384x256]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402
from codec_data import HELD_OUT, photos_dir  # noqa: E402

from pixelforge.images import read_image  # noqa: E402
from pixelforge.pipelines.codec import SHIPPED, export_codec, open_codec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JPEG_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
TARGET_BPPS = (0.25, 0.5, 0.75, 1.0)
TRAIN_COMMAND = ("pixelforge train codec --data folder:runs/codec-photos-train --size 512 --width 96 --latent 128 "
                 "--crop 128 --batch-size 8 --minutes 35 --run-dir runs/codec-v1 --no-progress")


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255


def _quality(decoded: Image.Image, original: torch.Tensor) -> tuple[float, float]:
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    x = _tensor(decoded)
    mse = torch.mean((x - original) ** 2).item()
    return 10 * np.log10(1 / max(mse, 1e-12)), float(ms_ssim(x, original, data_range=1.0))


def _pillow(image: Image.Image, fmt: str, quality: int) -> tuple[bytes, Image.Image]:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, format="JPEG", quality=quality, optimize=True, subsampling=2)
    else:
        image.save(buf, format="WEBP", quality=quality, method=6)
    data = buf.getvalue()
    return data, Image.open(io.BytesIO(data)).convert("RGB")


def bd(rate_a, dist_a, rate_b, dist_b) -> tuple[float, float]:
    """Bjontegaard delta: (BD-rate of b against a in %, BD-PSNR of b against a in dB)."""
    la, lb = np.log(rate_a), np.log(rate_b)
    lo, hi = max(min(dist_a), min(dist_b)), min(max(dist_a), max(dist_b))
    pa, pb = np.polyfit(dist_a, la, 3), np.polyfit(dist_b, lb, 3)
    ia, ib = np.polyint(pa), np.polyint(pb)
    avg = ((np.polyval(ib, hi) - np.polyval(ib, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo)
    bd_rate = (np.exp(avg) - 1) * 100
    lo_r, hi_r = max(min(la), min(lb)), min(max(la), max(lb))
    qa, qb = np.polyfit(la, dist_a, 3), np.polyfit(lb, dist_b, 3)
    ja, jb = np.polyint(qa), np.polyint(qb)
    bd_psnr = ((np.polyval(jb, hi_r) - np.polyval(jb, lo_r)) - (np.polyval(ja, hi_r) - np.polyval(ja, lo_r))) / (
        hi_r - lo_r)
    return float(bd_rate), float(bd_psnr)


def psnr_at(curve: dict, bpp: float) -> float | None:
    """PSNR interpolated linearly in log-rate; None outside the curve's range."""
    rates, psnrs = np.array(curve["bpp"]), np.array(curve["psnr"])
    order = np.argsort(rates)
    rates, psnrs = rates[order], psnrs[order]
    if not rates[0] <= bpp <= rates[-1]:
        return None
    return float(np.interp(np.log(bpp), np.log(rates), psnrs))


def measure(model: str | None) -> dict:
    codec = open_codec(model)
    photos = [read_image(photos_dir() / f"{name}.png").convert("RGB") for name in HELD_OUT]
    originals = [_tensor(p) for p in photos]
    pixels = [p.width * p.height for p in photos]
    curves = {}
    rows = {"pixelforge": [], "JPEG": [], "WebP": []}
    enc_time = dec_time = 0.0
    for q in range(1, codec.qualities + 1):
        per = []
        for image, original, n in zip(photos, originals, pixels):
            t0 = time.perf_counter()
            data = codec.compress(image, q)
            t1 = time.perf_counter()
            decoded = codec.decompress(data)
            t2 = time.perf_counter()
            enc_time += t1 - t0
            dec_time += t2 - t1
            per.append((8 * len(data) / n, *_quality(decoded, original)))
        rows["pixelforge"].append((q, *np.mean(per, 0)))
        print(f"pixelforge q{q}: {rows['pixelforge'][-1][1]:.3f} bpp, {rows['pixelforge'][-1][2]:.2f} dB")
    for fmt, qualities, key in (("JPEG", JPEG_QUALITIES, "JPEG"), ("WEBP", WEBP_QUALITIES, "WebP")):
        for q in qualities:
            per = []
            for image, original, n in zip(photos, originals, pixels):
                data, decoded = _pillow(image, fmt, q)
                per.append((8 * len(data) / n, *_quality(decoded, original)))
            rows[key].append((q, *np.mean(per, 0)))
    for key, r in rows.items():
        curves[key] = {"setting": [int(x[0]) for x in r], "bpp": [round(float(x[1]), 4) for x in r],
                       "psnr": [round(float(x[2]), 3) for x in r], "ms_ssim": [round(float(x[3]), 5) for x in r]}
    megapixels = sum(pixels) / 1e6 * codec.qualities
    result = {"model": codec.model_id, "held_out_photos": list(HELD_OUT), "image_size": [photos[0].width,
                                                                                           photos[0].height],
              "curves": curves, "encode_s_per_mp": round(enc_time / megapixels, 3),
              "decode_s_per_mp": round(dec_time / megapixels, 3), "threads": torch.get_num_threads()}
    pf = curves["pixelforge"]
    for other in ("JPEG", "WebP"):
        oc = curves[other]
        try:
            bd_rate, bd_psnr = bd(oc["bpp"], oc["psnr"], pf["bpp"], pf["psnr"])
        except (np.linalg.LinAlgError, ValueError):
            bd_rate, bd_psnr = float("nan"), float("nan")
        result[f"bd_rate_vs_{other.lower()}_percent"] = round(bd_rate, 2)
        result[f"bd_psnr_vs_{other.lower()}_db"] = round(bd_psnr, 3)
        gaps = {}
        for b in TARGET_BPPS:
            a, o = psnr_at(pf, b), psnr_at(oc, b)
            gaps[str(b)] = None if a is None or o is None else round(a - o, 3)
        result[f"psnr_gain_over_{other.lower()}_db"] = gaps
    jpeg_gaps = [g for g in result["psnr_gain_over_jpeg_db"].values() if g is not None]
    webp_gaps = [g for g in result["psnr_gain_over_webp_db"].values() if g is not None]
    result["target"] = {"rule": ">= 1 dB over JPEG and >= WebP at 0.25-1.0 bpp",
                        "min_gain_over_jpeg_db": min(jpeg_gaps) if jpeg_gaps else None,
                        "min_gain_over_webp_db": min(webp_gaps) if webp_gaps else None,
                        "met": bool(jpeg_gaps and webp_gaps and min(jpeg_gaps) >= 1 and min(webp_gaps) >= 0
                                    and len(jpeg_gaps) == len(TARGET_BPPS))}
    return result


def rd_plot(curves: dict, style_of, title: str, path: Path) -> None:
    """PSNR and MS-SSIM (in dB) against bits per pixel, one line per curve; the 0.25-1 bpp band
    of the targets shaded. ``style_of(name, index) -> (marker, colour)``."""
    from pixelforge.images import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (key, curve) in enumerate(curves.items()):
        marker, colour = style_of(key, i)
        axes[0].plot(curve["bpp"], curve["psnr"], marker, color=colour, label=key)
        axes[1].plot(curve["bpp"], -10 * np.log10(1 - np.array(curve["ms_ssim"])), marker, color=colour, label=key)
    for ax, label in zip(axes, ("PSNR (dB)", "MS-SSIM (dB)")):
        ax.set_xlim(0, 1.6)
        ax.axvspan(0.25, 1.0, color="0.93", zorder=0)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def plot(result: dict, path: Path) -> None:
    styles = {"pixelforge": ("o-", "C3"), "JPEG": ("s--", "C0"), "WebP": ("^--", "C2")}
    rd_plot(result["curves"], lambda key, i: styles[key],
            f"{result['model']} vs JPEG and WebP on {len(result['held_out_photos'])} held-out photos", path)


def compare_sheet(model: str | None, path: Path, target_bpp: float = 0.3) -> None:
    """One held-out photo's crop: original, pixelforge, JPEG and WebP at about the same size, each
    labelled with its setting, rate and PSNR over the whole photo."""
    from pixelforge.images import save_grid, to_tensor

    codec = open_codec(model)
    image = read_image(photos_dir() / f"{HELD_OUT[1]}.png").convert("RGB")
    original = _tensor(image)
    n = image.width * image.height
    best = min(range(1, codec.qualities + 1), key=lambda q: abs(8 * len(codec.compress(image, q)) / n - target_bpp))
    data = codec.compress(image, best)
    size = len(data)

    def closest(fmt, qualities):
        options = [(q, *_pillow(image, fmt, q)) for q in qualities]
        return min(options, key=lambda o: abs(len(o[1]) - size))

    box = (300, 150, 556, 406)
    tiles, labels = [image.crop(box)], [f"original ({HELD_OUT[1]})"]
    for name, (setting, encoded, decoded) in (("pixelforge", (best, data, codec.decompress(data))),
                                              ("JPEG", closest("JPEG", range(2, 96))),
                                              ("WebP", closest("WEBP", range(0, 100)))):
        psnr = _quality(decoded, original)[0]
        tiles.append(decoded.crop(box))
        labels.append(f"{name} quality {setting}\n{8 * len(encoded) / n:.3f} bpp, {psnr:.2f} dB")
    save_grid(torch.stack([to_tensor(t) for t in tiles]), path, nrow=len(tiles), columns=labels)
    print(f"{path}: " + " | ".join(label.replace("\n", " ") for label in labels))


def update_card(result: dict, with_training_photos: bool) -> None:
    """The shipped model card carries the measured figures (and, on export, its training photos)."""
    import json

    from codec_data import SKIMAGE_PHOTOS

    from pixelforge.zoo import ZOO_DIR

    card_path = ZOO_DIR / f"{SHIPPED}.json"
    info = json.loads(card_path.read_text())
    if with_training_photos:
        info["training_photos"] = sorted(p.name for p in (ROOT / "runs" / "codec-photos-train").iterdir())
        info["skimage_photos"] = list(SKIMAGE_PHOTOS)
    info["benchmark"] = {k: result[k] for k in ("held_out_photos", "bd_rate_vs_jpeg_percent",
                                                "bd_psnr_vs_jpeg_db", "bd_rate_vs_webp_percent",
                                                "bd_psnr_vs_webp_db", "psnr_gain_over_jpeg_db",
                                                "psnr_gain_over_webp_db", "encode_s_per_mp", "decode_s_per_mp")}
    info["benchmark"]["curve"] = result["curves"]["pixelforge"]
    info["benchmark"]["measured"] = result.get("date") or dt.date.today().isoformat()
    card_path.write_text(json.dumps(info, indent=2) + "\n")


def main() -> None:
    if "--compare" in sys.argv:
        from codec_compare import main as compare_main

        sys.argv.remove("--compare")
        return compare_main()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=SHIPPED, help=f"a codec run or shipped name (default {SHIPPED})")
    p.add_argument("--export", default=None, help="first ship this codec run as photos-codec-v1")
    p.add_argument("--update-card", action="store_true",
                   help="write the measured figures into the shipped model card (implied by --export)")
    p.add_argument("--compare-sheet", action="store_true",
                   help="only redraw docs/images/codec_compare.png (about a minute; the results file is left alone)")
    args = p.parse_args()
    if args.compare_sheet:
        return compare_sheet(args.model, ROOT / "docs" / "images" / "codec_compare.png")
    if args.export:
        export_codec(args.export, SHIPPED, TRAIN_COMMAND)
    result = measure(args.model)
    print(f"\n{'codec':<11} {'setting':>7} {'bpp':>7} {'PSNR':>7} {'MS-SSIM':>8}")
    for key, curve in result["curves"].items():
        for s, b, ps, ms in zip(curve["setting"], curve["bpp"], curve["psnr"], curve["ms_ssim"]):
            if b <= 2.0:
                print(f"{key:<11} {s:>7} {b:>7.3f} {ps:>7.2f} {ms:>8.4f}")
    print(f"\nBD-rate vs JPEG: {result['bd_rate_vs_jpeg_percent']}%  BD-PSNR vs JPEG: "
          f"{result['bd_psnr_vs_jpeg_db']} dB; vs WebP: {result['bd_rate_vs_webp_percent']}% / "
          f"{result['bd_psnr_vs_webp_db']} dB")
    print(f"PSNR gain over JPEG at {TARGET_BPPS} bpp: {result['psnr_gain_over_jpeg_db']}")
    print(f"PSNR gain over WebP at {TARGET_BPPS} bpp: {result['psnr_gain_over_webp_db']}")
    print(f"encode {result['encode_s_per_mp']} s/MP, decode {result['decode_s_per_mp']} s/MP; "
          f"target met: {result['target']['met']}")
    if args.export or args.update_card:
        update_card(result, with_training_photos=bool(args.export))
    plot(result, ROOT / "docs" / "images" / "codec_rd.png")
    compare_sheet(args.model, ROOT / "docs" / "images" / "codec_compare.png")
    write_results("codec", result)


if __name__ == "__main__":
    main()
