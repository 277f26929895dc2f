"""Diffusion vs GAN on this CPU: FID against wall-clock training time, and sampling time.

Both families train on Fashion-MNIST with their shipped defaults (`pixelforge train diffusion`
and `pixelforge train gan`), in legs that end at the given minutes; after each leg the run is
evaluated (evaluation time is not training time). FID uses the shipped Fashion-MNIST judge
(fashion-mnist-cnn-v1 features) on ``--samples`` samples against as many test images; the
diffusion model samples with DDIM at ``--eval-steps`` steps, the GAN from its EMA generator.
Sampling time: 64 images at 25, 50 and 250 DDIM steps, batch 64, after one warm-up batch.
Targets: diffusion FID below the GAN's best-so-far at equal training time from 30 minutes
on; 64 samples with 50 DDIM steps in <= 10 s.

    PIXELFORGE_DATA=../shared/data python benchmarks/diffusion_quality.py [--checkpoints 10,20,30]

Writes benchmarks/results/diffusion_quality.json, diffusion_quality.png and a sample grid
docs/images/diffusion_samples.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import RESULTS, write_results

import pixelforge
from pixelforge.images import pyplot, save_figure, save_grid
from pixelforge.pipelines.evaluate import evaluate_generator, real_images, resolve_extractor
from pixelforge.runs import Run

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
FAMILIES = {"diffusion": pixelforge.train_diffusion, "gan": pixelforge.train_gan}


def sampling_times(run: Path, steps_list=(25, 50, 250)) -> dict:
    pipe = pixelforge.load(run)
    pipe.sample(64, steps=5)  # warm-up: oneDNN picks its kernels
    times = {}
    for steps in steps_list:
        t = time.perf_counter()
        pipe.sample(64, seed=0, steps=steps)
        times[str(steps)] = round(time.perf_counter() - t, 2)
        print(f"64 samples, {steps:>3} DDIM steps: {times[str(steps)]:.2f} s")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="10,20,30", help="training minutes at which to measure FID")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--eval-steps", type=int, default=50, help="DDIM steps of the diffusion samples for FID")
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--families", default="diffusion,gan")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    marks = [float(m) for m in args.checkpoints.split(",")]
    data = {"spec": "fashion-mnist", "size": 28, "channels": 1}
    judge = resolve_extractor(None, "fashion-mnist")
    real = real_images(data, args.samples)
    table: dict[str, list[dict]] = {}
    for family in args.families.split(","):
        run = Path(args.runs_dir) / f"bench-{family}-quality"
        train = FAMILIES[family]
        done, table[family] = 0.0, []
        for mark in marks:
            t = time.perf_counter()
            if done == 0:
                train("fashion-mnist", run, overwrite=True, seed=0, minutes=mark)
            else:
                train(None, run, resume=True, minutes=mark - done)
            train_s = time.perf_counter() - t
            done = mark
            pipe = pixelforge.load(run, **({"steps": args.eval_steps} if family == "diffusion" else {}))
            t = time.perf_counter()
            m = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid", "kid"), real=real, progress=False)
            steps = Run.open(run).load_state()["step"]
            row = {"minutes": mark, "steps": steps, "fid": round(m["fid"], 3), "kid": round(m["kid_mean"], 5),
                   "leg_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t, 1)}
            table[family].append(row)
            print(f"{family:<10} {mark:>5.1f} min  step {steps:>6}  FID {row['fid']:8.3f}  KID {row['kid']:.4f}  "
                  f"(eval {row['eval_seconds']:.0f} s)", flush=True)
    figures: dict = {"judge": judge.name, "samples": args.samples, "eval_steps": args.eval_steps, "results": table}
    if "diffusion" in table:
        run = Path(args.runs_dir) / "bench-diffusion-quality"
        figures["sampling_seconds_64_images"] = times = sampling_times(run)
        figures["sampling_target_met"] = times["50"] <= 10
        if not args.no_save:
            save_grid(pixelforge.load(run).sample(64, seed=0, steps=50), DOCS_IMAGES / "diffusion_samples.png", scale=2)
    if {"diffusion", "gan"} <= set(table):
        verdicts = []
        for d in table["diffusion"]:
            gan_best = min(g["fid"] for g in table["gan"] if g["minutes"] <= d["minutes"])
            verdicts.append({"minutes": d["minutes"], "diffusion_fid": d["fid"], "gan_best_fid": gan_best,
                             "diffusion_better": d["fid"] < gan_best})
            print(f"at {d['minutes']:g} min: diffusion {d['fid']:.3f} vs GAN best {gan_best:.3f} "
                  f"-> {'diffusion better' if d['fid'] < gan_best else 'GAN better'}")
        figures["comparison"] = verdicts
        figures["fid_target_met"] = all(v["diffusion_better"] for v in verdicts if v["minutes"] >= 30) and \
            any(v["minutes"] >= 30 for v in verdicts)
    if not args.no_save:
        write_results("diffusion_quality", figures)
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for family, rows in table.items():
            ax.plot([r["minutes"] for r in rows], [r["fid"] for r in rows], marker="o", label=family)
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_ylabel(f"FID ({judge.name} features, {args.samples} samples)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, RESULTS / "diffusion_quality.png")
        print(f"wrote {RESULTS / 'diffusion_quality.png'}")


if __name__ == "__main__":
    main()
