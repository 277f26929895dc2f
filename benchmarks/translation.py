"""Image-to-image translation on this CPU: pix2pix colourisation and a Fashion-MNIST CycleGAN.

    PIXELFORGE_DATA=../shared/data flock /tmp/pixelforge-heavy.lock python benchmarks/translation.py

1. Colourisation (``--pairs gray``) of photos: pix2pix (adversarial + 100 * L1) and a plain
   L1 U-Net (``--gan-weight 0``, the same network, the same number of steps) are trained on
   random 64 px crops of the photos of $PIXELFORGE_DATA/photos minus four held-out ones
   and the two that have no colour, loaded at 320 px. On the held-out photos (loaded at
   256 x 256) PSNR and SSIM on RGB are reported for the grayscale input itself (three
   equal planes: the "do nothing" baseline), the L1 U-Net and pix2pix, plus the
   colourfulness of Hasler & Suesstrunk (2003), which PSNR does not see (a gray output is
   "safe" for PSNR).
2. CycleGAN between two Fashion-MNIST classes, Sneaker (7) and Ankle boot (9): the shipped
   classifier (fashion-mnist-cnn-v1) labels the translations of the 1,000 test images of
   each class; reported are its accuracy at recognising them as the *target* class (and,
   as references, on the untranslated inputs and on real target images), and the
   cycle-reconstruction PSNR of a -> G_BA(G_AB(a)) and b -> G_AB(G_BA(b)).

Writes benchmarks/results/translation.json, docs/images/translation_colourise.png and
docs/images/translation_cyclegan.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from _common import write_results

import pixelforge
from pixelforge.data import load_dataset, load_image
from pixelforge.images import make_grid, pyplot, save_figure
from pixelforge.metrics.image_quality import psnr, ssim
from pixelforge.zoo import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ("dune", "garden", "greenmeadow", "raindrops")  # colourful photos kept out of training
GRAY_PHOTOS = ("coldripple", "grey")  # no colour to learn from: left out of colourisation training
CLASS_A, CLASS_B = 7, 9  # Sneaker -> Ankle boot
P2P = dict(width=32, depth=5, d_width=32, d_layers=3, crop=64, batch_size=16, size=320)
CYC = dict(width=32, depth=4, d_width=32, d_layers=3, batch_size=16)


def photos_dir() -> Path:
    root = os.environ.get("PIXELFORGE_DATA")
    if not root or not (Path(root) / "photos").is_dir():
        sys.exit("set PIXELFORGE_DATA to the folder holding photos/")
    return Path(root) / "photos"


def training_folder() -> Path:
    folder = ROOT / "runs" / "translation-photos-train"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for photo in sorted(photos_dir().glob("*.png")):
        if photo.stem not in HELD_OUT + GRAY_PHOTOS:
            (folder / photo.name).symlink_to(photo)
    return folder


def cli(family: str, opts: dict) -> str:
    return f"pixelforge train {family} " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in opts.items())


def colourfulness(x: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness of (N, 3, H, W) images in [0, 1] (0 for gray)."""
    r, g, b = (x * 255).unbind(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    std = (rg.flatten(1).std(1) ** 2 + yb.flatten(1).std(1) ** 2).sqrt()
    mean = (rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2).sqrt()
    return std + 0.3 * mean


def quantise(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


def colourisation(minutes: float) -> dict:
    folder = training_folder()
    data = f"folder:{folder.relative_to(ROOT)}"
    runs = {"pix2pix": ROOT / "runs" / "translation-colourise-pix2pix",
            "l1_unet": ROOT / "runs" / "translation-colourise-l1"}
    opts = {"pairs": "gray", **P2P}
    t = time.perf_counter()
    pixelforge.train_pix2pix(data, runs["pix2pix"], overwrite=True, minutes=minutes, seed=0, progress=False,
                             **opts)
    seconds_p2p = time.perf_counter() - t
    steps = _last_step(runs["pix2pix"])
    t = time.perf_counter()
    pixelforge.train_pix2pix(data, runs["l1_unet"], overwrite=True, max_steps=steps, seed=0, progress=False,
                             gan_weight=0.0, **opts)
    seconds_l1 = time.perf_counter() - t
    commands = {"pix2pix": cli("pix2pix", {"data": data, **opts, "minutes": minutes}),
                "l1_unet": cli("pix2pix", {"data": data, **opts, "gan_weight": 0, "max_steps": steps})}

    target = torch.stack([load_image(photos_dir() / f"{n}.png", size=256, channels=3) for n in HELD_OUT])
    target = target.float() / 255
    pipes = {k: pixelforge.load_translation(v, device="cpu") for k, v in runs.items()}
    gray = pipes["pix2pix"].make_input(target)  # exactly the training pairing's input
    outputs = {"grayscale_input": quantise(gray.expand(-1, 3, -1, -1))}
    for k, p in pipes.items():
        outputs[k] = quantise(p.translate_tensor(gray))
    rows = []
    for i, name in enumerate(HELD_OUT):
        row = {"image": name}
        for k, out in outputs.items():
            row[f"psnr_{k}"] = round(float(psnr(out[i:i + 1], target[i:i + 1])[0]), 3)
            row[f"ssim_{k}"] = round(float(ssim(out[i:i + 1], target[i:i + 1])[0]), 4)
            row[f"colourfulness_{k}"] = round(float(colourfulness(out[i:i + 1])[0]), 2)
        row["colourfulness_original"] = round(float(colourfulness(target[i:i + 1])[0]), 2)
        rows.append(row)
    keys = [k for k in rows[0] if k != "image"]
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in keys}
    sheet(target, outputs, ROOT / "docs" / "images" / "translation_colourise.png", rows)
    return {"held_out_photos": list(HELD_OUT), "eval_size": "256x256 (shorter side resized, centre crop)",
            "training_photos": sorted(p.stem for p in folder.iterdir()), "steps": steps,
            "seconds": {"pix2pix": round(seconds_p2p, 1), "l1_unet": round(seconds_l1, 1)},
            "commands": commands, "per_image": rows, "mean": mean}


def _last_step(run: Path) -> int:
    from pixelforge.runs import Run

    return int(Run.open(run).read_metrics()[-1]["step"])


def sheet(target, outputs, path: Path, rows) -> Path:
    plt = pyplot()
    cols = [("grayscale_input", "input (gray)"), ("l1_unet", "L1 U-Net"), ("pix2pix", "pix2pix"), (None, "original")]
    fig, axes = plt.subplots(len(target), 4, figsize=(12, 3.1 * len(target)), dpi=90, squeeze=False)
    for i, row in enumerate(axes):
        for ax, (k, title) in zip(row, cols):
            img = target[i] if k is None else outputs[k][i]
            ax.imshow(img.permute(1, 2, 0).numpy())
            extra = "" if k is None else f"\n{rows[i][f'psnr_{k}']:.2f} dB, SSIM {rows[i][f'ssim_{k}']:.3f}"
            ax.set_title(f"{rows[i]['image']}: {title}{extra}" if k == "grayscale_input" else title + extra, fontsize=9)
            ax.axis("off")
    fig.suptitle("Colourisation of held-out photos (PSNR/SSIM on RGB against the original)")
    return save_figure(fig, path)


def cyclegan(minutes: float, train: bool = True) -> dict:
    """``train=False`` evaluates the run a previous invocation trained (its training time is
    taken from the previous results file)."""
    run = ROOT / "runs" / "translation-cyclegan-fm"
    a, b = f"fashion-mnist:{CLASS_A}", f"fashion-mnist:{CLASS_B}"
    if train:
        t = time.perf_counter()
        pixelforge.train_cyclegan(a, b, run, overwrite=True, minutes=minutes, seed=0, progress=False, **CYC)
        seconds = time.perf_counter() - t
    else:
        import json

        previous = json.loads((ROOT / "benchmarks" / "results" / "translation.json").read_text())["cyclegan"]
        seconds, minutes = previous["seconds"], float(previous["command"].split("--minutes ")[1])
    steps = _last_step(run)
    pipe = pixelforge.load_translation(run, device="cpu")
    judge = load_pretrained("fashion-mnist-cnn-v1", device="cpu")
    test_a = load_dataset(a, split="test").images.float() / 255
    test_b = load_dataset(b, split="test").images.float() / 255
    fake_b, fake_a = pipe.translate_tensor(test_a, "a2b"), pipe.translate_tensor(test_b, "b2a")
    rec_a, rec_b = pipe.translate_tensor(fake_b, "b2a"), pipe.translate_tensor(fake_a, "a2b")

    def acc(x, cls):
        return round(float((judge.predict(quantise(x)).argmax(1) == cls).float().mean()), 4)

    res = {
        "classes": {"A": judge.classes[CLASS_A], "B": judge.classes[CLASS_B]},
        "test_images": {"A": len(test_a), "B": len(test_b)}, "steps": steps, "seconds": round(seconds, 1),
        "command": cli("cyclegan", {"a": a, "b": b, **CYC, "minutes": minutes}),
        "a2b": {"accuracy_translated_as_target": acc(fake_b, CLASS_B),
                "accuracy_untranslated_as_target": acc(test_a, CLASS_B),
                "accuracy_real_target_images": acc(test_b, CLASS_B),
                "cycle_psnr": round(float(psnr(quantise(rec_a), test_a).mean()), 3)},
        "b2a": {"accuracy_translated_as_target": acc(fake_a, CLASS_A),
                "accuracy_untranslated_as_target": acc(test_b, CLASS_A),
                "accuracy_real_target_images": acc(test_a, CLASS_A),
                "cycle_psnr": round(float(psnr(quantise(rec_b), test_b).mean()), 3)},
    }
    n = 12
    rows = [(f"{res['classes']['A']} (A)", test_a), ("G_AB(A)", fake_b), ("G_BA(G_AB(A))", rec_a),
            (f"{res['classes']['B']} (B)", test_b), ("G_BA(B)", fake_a), ("G_AB(G_BA(B))", rec_b)]
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.45 * len(rows)), dpi=90)
    for ax, (title, x) in zip(axes, rows):
        ax.imshow(make_grid(quantise(x[:n]), nrow=n), interpolation="nearest", cmap="gray", vmin=0, vmax=255)
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"CycleGAN {res['classes']['A']} <-> {res['classes']['B']} on Fashion-MNIST test images "
                 f"({steps} steps, {seconds / 60:.0f} min on this CPU)")
    save_figure(fig, ROOT / "docs" / "images" / "translation_cyclegan.png")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p2p-minutes", type=float, default=5.0, help="pix2pix budget (the L1 U-Net gets its steps)")
    ap.add_argument("--cyclegan-minutes", type=float, default=5.0)
    ap.add_argument("--reuse-cyclegan", action="store_true",
                    help="evaluate the CycleGAN run of the previous invocation instead of training it again")
    args = ap.parse_args()
    torch.manual_seed(0)
    col = colourisation(args.p2p_minutes)
    cyc = cyclegan(args.cyclegan_minutes, train=not args.reuse_cyclegan)
    m = col["mean"]
    print(f"\ncolourisation of {len(HELD_OUT)} held-out photos ({col['steps']} steps each; "
          f"pix2pix {col['seconds']['pix2pix']:.0f} s, L1 U-Net {col['seconds']['l1_unet']:.0f} s)")
    print(f"{'image':<12} {'':>8}{'gray input':>22}{'L1 U-Net':>22}{'pix2pix':>22}")
    for r in col["per_image"] + [{"image": "mean", **m}]:
        cells = "".join(f"{r[f'psnr_{k}']:>9.2f} dB {r[f'ssim_{k}']:.3f} {r[f'colourfulness_{k}']:>4.0f}"
                        for k in ("grayscale_input", "l1_unet", "pix2pix"))
        print(f"{r['image']:<12} {'':>8}{cells}  (original colourfulness {r['colourfulness_original']:.0f})")
    print("(PSNR, SSIM, colourfulness per model)")
    print(f"\nCycleGAN {cyc['classes']['A']} <-> {cyc['classes']['B']} ({cyc['steps']} steps, {cyc['seconds']:.0f} s)")
    print(f"{'direction':<10} {'translated':>11} {'untranslated':>13} {'real target':>12} {'cycle PSNR':>11}")
    for d in ("a2b", "b2a"):
        r = cyc[d]
        print(f"{d:<10} {r['accuracy_translated_as_target']:>11.1%} {r['accuracy_untranslated_as_target']:>13.1%} "
              f"{r['accuracy_real_target_images']:>12.1%} {r['cycle_psnr']:>9.2f} dB")
    write_results("translation", {"threads": torch.get_num_threads(), "precision": "fp32 (auto on CPU)",
                                  "colourisation": col, "cyclegan": cyc})


if __name__ == "__main__":
    main()
