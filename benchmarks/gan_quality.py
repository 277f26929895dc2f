"""Generative quality vs training time: FID after 2, 5 and 10 minutes of training on this
CPU, for pixelforge's default GAN recipe and for a textbook DCGAN, in one run.

The textbook side is the seeds' recipe on the same architecture: unconditional, BCE
(non-saturating) loss, Adam 2e-4, batch 128, fp32 NCHW, samples from the raw generator (no
EMA). The default side is `pixelforge train gan` as shipped (class-conditional on
Fashion-MNIST's labels with a projection D, Adam 1e-3, batch 64, bf16 + channels_last, EMA
generator); a third run is the same recipe with `--no-conditional`, to show what the labels
add and what the rest does without them.
FID uses the shipped Fashion-MNIST judge (fashion-mnist-cnn-v1 features), 5000 samples
against the 10,000 test images. Target: default FID at 10 min <= 1/3 of the textbook's.

    PIXELFORGE_DATA=../shared/data python benchmarks/gan_quality.py [--checkpoints 2,5,10]

Writes benchmarks/results/gan_quality.json and benchmarks/results/gan_quality.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import RESULTS, write_results

import pixelforge
from pixelforge.images import pyplot, save_figure
from pixelforge.pipelines.evaluate import evaluate_generator, real_images, resolve_extractor

RECIPES = {
    "pixelforge default": dict(options={}, precision="auto", ema=True, channels_last=None),
    # The default without its labels: what the other changes buy on their own.
    "pixelforge unconditional": dict(options=dict(conditional=False), precision="auto", ema=True,
                                     channels_last=None),
    "textbook DCGAN": dict(options=dict(conditional=False, batch_size=128, ema_decay=0.0, lr_g=2e-4, lr_d=2e-4),
                           precision="fp32", ema=False, channels_last=False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="2,5,10", help="minutes at which to measure FID")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    marks = [float(m) for m in args.checkpoints.split(",")]
    data = {"spec": "fashion-mnist", "size": 28, "channels": 1}
    judge = resolve_extractor(None, "fashion-mnist")
    real = real_images(data, args.samples)
    table: dict[str, list[dict]] = {}
    for name, recipe in RECIPES.items():
        run = Path(args.runs_dir) / f"bench-gan-{name.split()[0].lower()}"
        done = 0.0
        table[name] = []
        for mark in marks:
            kwargs = dict(minutes=mark - done, precision=recipe["precision"], channels_last=recipe["channels_last"])
            if done == 0:
                pixelforge.train_gan("fashion-mnist", run, overwrite=True, seed=0, **kwargs, **recipe["options"])
            else:
                pixelforge.train_gan(None, run, resume=True, **kwargs)
            done = mark
            pipe = pixelforge.load(run, ema=recipe["ema"])
            m = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid", "kid"), real=real, progress=False)
            steps = pixelforge.runs.Run.open(run).load_state()["step"]
            table[name].append({"minutes": mark, "steps": steps, "fid": round(m["fid"], 3),
                                "kid": round(m["kid_mean"], 5)})
            print(f"{name:<20} {mark:>5.1f} min  step {steps:>6}  FID {m['fid']:8.3f}  KID {m['kid_mean']:.4f}")
    default, textbook = table["pixelforge default"][-1]["fid"], table["textbook DCGAN"][-1]["fid"]
    ratio = default / textbook
    unconditional_ratio = table["pixelforge unconditional"][-1]["fid"] / textbook
    print(f"\nFID at {marks[-1]:g} min: default {default:.3f} vs textbook {textbook:.3f} "
          f"-> ratio {ratio:.2f} (target <= 0.33: {'met' if ratio <= 1 / 3 else 'missed'}); "
          f"unconditional {unconditional_ratio:.2f}")
    if not args.no_save:
        write_results("gan_quality", {"judge": judge.name, "samples": args.samples, "results": table,
                                      "fid_ratio_at_end": round(ratio, 3), "target_ratio": round(1 / 3, 3),
                                      "unconditional_fid_ratio_at_end": round(unconditional_ratio, 3)})
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for name, rows in table.items():
            ax.plot([r["minutes"] for r in rows], [r["fid"] for r in rows], marker="o", label=name)
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_ylabel(f"FID ({judge.name} features)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, RESULTS / "gan_quality.png")
        print(f"wrote {RESULTS / 'gan_quality.png'}")


if __name__ == "__main__":
    main()
