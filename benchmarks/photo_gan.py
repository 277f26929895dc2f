"""A 64x64 RGB GAN on a folder of photos: what a user gets from 30 minutes of

    pixelforge train gan --data folder:PHOTOS --size 64 --channels 3 --random-crops \\
        --diffaug color,translation,cutout --minutes 30

on this CPU, with the unconditional default recipe (a folder without subfolders has no labels).

    PIXELFORGE_DATA=../shared/data python benchmarks/photo_gan.py [--minutes 30]

Steps, each skipped when its output exists (so a stopped sitting resumes):

1. The judge. No pretrained RGB feature network is available offline, so the project trains one:
   ``photos-crops-judge``, a CNN classifier (``pixelforge train classifier``) that tells which
   training photo a 64 px crop was cut from. Its labelled crops are written under the run
   folder; the folder's held-out photos are never shown to it. Its features know colours,
   textures and scene parts of photos, not objects: FID/KID under it compare crop statistics,
   and are only comparable with other numbers under the same judge.
2. The GAN run: the command above (``--resume`` continues a stopped run to its total minutes).
3. The report: a grid of samples; for 16 of them the nearest of 20,000 training crops
   (L2 in pixels) beside them, and the same nearest-crop distance for crops of the held-out
   photos (a memorisation check: samples much closer to the training crops than unseen crops
   are would be copies); the loss curve; FID, KID, precision and recall of 2,000 EMA samples
   against 2,000 crops of the held-out photos, beside the same figures for 2,000 crops of the
   *training* photos (what a perfect copy of the training data would score against unseen photos).
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
from _common import write_results  # noqa: E402
from codec_data import photos_dir  # noqa: E402

from pixelforge.data import load_dataset  # noqa: E402
from pixelforge.images import plot_curves, save_grid, save_png  # noqa: E402
from pixelforge.runs import Run  # noqa: E402

RUNS = Path(__file__).parents[1] / "runs"
GAN_RUN, JUDGE_RUN, CROP_FOLDER = RUNS / "photo-gan-64", RUNS / "photos-crops-judge", RUNS / "photos-crops-64"
DOC_IMAGES = Path(__file__).parents[1] / "docs" / "images"
SIZE, CROPS_PER_PHOTO, JUDGE_EPOCHS, EVAL_N, BANK_N, SHOWN = 64, 400, 12, 2000, 20000, 16


def pixelforge(*args: str) -> None:
    command = [sys.executable, "-c", "from pixelforge.cli import main; main()", *args]
    print("$ pixelforge " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


@functools.cache
def photos(split: str):
    """The folder's ``split`` photos, whole, as training's random crops see them (decoded once)."""
    return load_dataset(f"folder:{photos_dir()}", size=SIZE, channels=3, split=split, random_crops=True)


def crops(split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 random 64 px crops of the folder's ``split`` photos and the photo each came from."""
    data = photos(split)
    photo_of = torch.randint(len(data.photos), (n,), generator=torch.Generator().manual_seed(seed))
    first_tile = torch.searchsorted(data.photo_of_tile, torch.arange(len(data.photos)))  # tiles run photo by photo
    images, _ = data.take(first_tile[photo_of], (seed, n))
    return images, photo_of


def gan_args(data: str) -> list[str]:
    return ["train", "gan", "--data", f"folder:{data}", "--size", str(SIZE), "--channels", "3",
            "--random-crops", "--diffaug", "color,translation,cutout"]


def train_judge() -> None:
    if (JUDGE_RUN / "config.json").exists():
        return
    images, photo_of = crops("train", CROPS_PER_PHOTO * len(photos("train").photos), seed=1)
    for i, (image, p) in enumerate(zip(images, photo_of.tolist())):
        save_png(image.permute(1, 2, 0).numpy(), CROP_FOLDER / f"photo{p:02d}" / f"{i:05d}.png")
    pixelforge("train", "classifier", "--data", f"folder:{CROP_FOLDER}", "--size", str(SIZE), "--channels", "3",
               "--blocks", "4", "--width", "32", "--epochs", str(JUDGE_EPOCHS), "--run-dir", str(JUDGE_RUN),
               "--no-progress")


def train_gan(minutes: float) -> None:
    done = trained_minutes()
    if done >= minutes - 0.5:
        return
    pixelforge(*gan_args(str(photos_dir())), "--run-dir", str(GAN_RUN), "--minutes", f"{minutes - done:.1f}",
               *(["--resume"] if done else []))


def gan_losses() -> list[dict]:
    return [r for r in Run(GAN_RUN).read_metrics() if "d_loss" in r]


def trained_minutes() -> float:
    """Training wall-clock minutes in the run's metrics log (0 if none): the sum of its
    invocations' spans, so a resumed run counts only the time it trained."""
    times = [r["time"] for r in gan_losses()]
    gaps = [b - a for a, b in zip(times, times[1:])]
    return sum(g for g in gaps if g < 120) / 60  # a gap over 2 minutes is a stop between invocations


def loss_curve(path: Path) -> dict:
    rows = gan_losses()
    plot_curves(rows, ["d_loss", "g_loss"], path, "64 px photo GAN: discriminator and generator losses")
    return {"steps": rows[-1]["step"], "images_per_s_mean": round(sum(r["images_per_s"] for r in rows) / len(rows), 1)}


def nearest(samples: torch.Tensor, bank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, the index of and root-mean-square pixel distance (0..255) to its nearest bank image."""
    flat_bank = bank.flatten(1).float()
    bank_sq = flat_bank.pow(2).sum(1)
    index, dist = [], []
    for chunk in samples.flatten(1).float().split(256):
        d = chunk.pow(2).sum(1, keepdim=True) - 2 * chunk @ flat_bank.T + bank_sq
        best = d.min(1)
        index.append(best.indices)
        dist.append(best.values.clamp_min(0).div(flat_bank.shape[1]).sqrt())
    return torch.cat(index), torch.cat(dist)


def report() -> dict:
    from pixelforge.metrics import calculate_metrics
    from pixelforge.pipelines.classifier import load_classifier
    from pixelforge.pipelines.gan import load_gan

    pipe = load_gan(GAN_RUN)
    judge = load_classifier(JUDGE_RUN)
    fake = (pipe.sample(EVAL_N, seed=0).clamp(0, 1) * 255).round().to(torch.uint8)
    held_out, _ = crops("val", EVAL_N, seed=2)
    train_ref, _ = crops("train", EVAL_N, seed=3)
    bank, _ = crops("train", BANK_N, seed=4)
    metrics = ["fid", "kid", "precision", "recall"]
    scores = {"samples": calculate_metrics(held_out, fake, judge, metrics=metrics, progress=True),
              "training_crops": calculate_metrics(held_out, train_ref, judge, metrics=metrics, progress=True)}
    shown = fake[:SHOWN]
    index, dist = nearest(shown, bank)
    _, sample_dist = nearest(fake[:500], bank)
    _, held_out_dist = nearest(held_out[:500], bank)
    pairs = torch.cat([shown, bank[index]]).float() / 255
    save_grid(pairs, DOC_IMAGES / "photo_gan_nearest.png", nrow=SHOWN, scale=2,
              rows=["sample", "nearest training crop"])
    save_grid(fake[:64].float() / 255, DOC_IMAGES / "photo_gan_samples.png", nrow=8)
    training = loss_curve(DOC_IMAGES / "photo_gan_losses.png")
    config = Run.open(JUDGE_RUN).config
    return {
        "command": " ".join(["pixelforge", *gan_args("photos"), "--minutes", "30"]),
        "minutes": round(trained_minutes(), 1), **training,
        "judge": {"name": "photos-crops-judge", "task": "which training photo a 64 px crop comes from",
                  "classes": config["model"]["config"]["num_classes"], "epochs": JUDGE_EPOCHS,
                  "val_accuracy": _last_val_accuracy(), "config": config["model"]},
        "eval": {"n": EVAL_N, "real": "random 64 px crops of the folder's held-out photos (split val)",
                 "held_out_photos": len(photos("val").photos)},
        "scores": {k: {m: (round(float(v), 5) if isinstance(v, (int, float)) else v) for m, v in s.items()}
                   for k, s in scores.items()},
        "memorisation": {"bank": BANK_N, "distance": "RMS pixel distance (0-255) to the nearest training crop",
                         "samples_median": round(float(sample_dist.median()), 2),
                         "held_out_crops_median": round(float(held_out_dist.median()), 2),
                         "shown_samples": [round(float(d), 2) for d in dist]},
    }


def _last_val_accuracy() -> float | None:
    accs = [r["val_acc"] for r in Run(JUDGE_RUN).read_metrics() if "val_acc" in r]
    return round(accs[-1], 4) if accs else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="training minutes of the GAN run in all")
    args = p.parse_args()
    train_judge()
    train_gan(args.minutes)
    result = report()
    print(json.dumps(result["scores"], indent=1), json.dumps(result["memorisation"]))
    write_results("photo_gan", result)


if __name__ == "__main__":
    main()
