"""Generative quality vs training time: FID after 2, 5 and 10 minutes of training on this
CPU, for pixelforge's default GAN recipe and for a textbook DCGAN, in one run.

The textbook side is the seeds' recipe on the same architecture: unconditional, BCE
(non-saturating) loss, Adam 2e-4, batch 128, fp32 NCHW, samples from the raw generator (no
EMA). The default side is `pixelforge train gan` as shipped (class-conditional on
Fashion-MNIST's labels with a projection D, Adam 1e-3, batch 64, bf16 + channels_last, EMA
generator); a third run is the same recipe with `--no-conditional`, to show what the labels
add and what the rest does without them.
FID uses the shipped Fashion-MNIST judge (fashion-mnist-cnn-v1 features), 5000 samples
against the test images; KID, precision and recall (k = 3 nearest neighbours in the same
feature space) beside it. Target: default FID at 10 min <= 1/3 of the textbook's, judged as
the project judges targets: over the seeds run, the per-seed ratio's mean plus one standard
deviation must clear 1/3.

Every (recipe, seed, minute mark) measured is kept in a cache
(benchmarks/results/gan_quality_cache.json, with the commit it was measured at), so seeds can
be added over several sittings; ``--fresh`` starts over. Training is time-budgeted, so run it
alone on the machine.

    PIXELFORGE_DATA=../shared/data python benchmarks/gan_quality.py [--seeds 0,1,2] [--checkpoints 2,5,10]

Writes benchmarks/results/gan_quality.json and benchmarks/results/gan_quality.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
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


CACHE = RESULTS / "gan_quality_cache.json"
METRICS = ("fid", "kid_mean", "precision", "recall")


def commit() -> str:
    out = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def measure_seed(name: str, recipe: dict, seed: int, marks: list[float], args, data, judge, real, cache) -> None:
    """Train one recipe with one seed through the minute marks, measuring at each (resumes
    from the cache and the run folder)."""
    run = Path(args.runs_dir) / f"bench-gan-{name.split()[-1].lower()}-s{seed}"
    done = 0.0
    for mark in marks:
        key = f"{name}|{seed}|{mark:g}"
        if key in cache:
            done = mark
            continue
        kwargs = dict(minutes=mark - done, precision=recipe["precision"], channels_last=recipe["channels_last"])
        if done == 0:
            pixelforge.train_gan("fashion-mnist", run, overwrite=True, seed=seed, **kwargs, **recipe["options"])
        else:
            pixelforge.train_gan(None, run, resume=True, **kwargs)
        done = mark
        pipe = pixelforge.load(run, ema=recipe["ema"])
        m = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid", "kid", "precision", "recall"),
                               real=real, progress=False, seed=seed)
        steps = pixelforge.runs.Run.open(run).load_state()["step"]
        cache[key] = {"steps": steps, **{k: round(float(m[k]), 5) for k in METRICS}, "commit": commit()}
        args.cache.write_text(json.dumps(cache, indent=1) + "\n")
        print(f"{name:<26} seed {seed} {mark:>5.1f} min  step {steps:>6}  FID {m['fid']:8.3f}  "
              f"precision {m['precision']:.3f}  recall {m['recall']:.3f}")


def summarise(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 5),
            "std": round(statistics.stdev(values), 5) if len(values) > 1 else None, "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="2,5,10", help="minutes at which to measure FID")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--fresh", action="store_true", help="forget the cached measurements")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where measurements are kept between sittings")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    marks = [float(m) for m in args.checkpoints.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    data = {"spec": "fashion-mnist", "size": 28, "channels": 1}
    judge = resolve_extractor(None, "fashion-mnist")
    real = real_images(data, args.samples, "test")
    cache = {} if args.fresh or not args.cache.exists() else json.loads(args.cache.read_text())
    for seed in seeds:
        for name, recipe in RECIPES.items():
            measure_seed(name, recipe, seed, marks, args, data, judge, real, cache)

    table = {}
    for name in RECIPES:
        table[name] = []
        for mark in marks:
            rows = [cache[f"{name}|{s}|{mark:g}"] for s in seeds]
            table[name].append({"minutes": mark, "steps": summarise([r["steps"] for r in rows]),
                                **{k: summarise([r[k] for r in rows]) for k in METRICS},
                                "per_seed": {s: r for s, r in zip(seeds, rows)}})
    end = f"{marks[-1]:g}"
    ratios = [cache[f"pixelforge default|{s}|{end}"]["fid"] / cache[f"textbook DCGAN|{s}|{end}"]["fid"] for s in seeds]
    unconditional = [cache[f"pixelforge unconditional|{s}|{end}"]["fid"] / cache[f"textbook DCGAN|{s}|{end}"]["fid"]
                     for s in seeds]
    ratio = summarise(ratios)
    bound = ratio["mean"] + (ratio["std"] or 0.0)
    verdict = ("met" if bound <= 1 / 3 else "missed") if len(seeds) >= 3 else f"not judged ({len(seeds)} seed(s); 3 needed)"
    for name, rows in table.items():
        r = rows[-1]
        print(f"{name:<26} {end} min: FID {r['fid']['mean']:.3f} +- {r['fid']['std'] or 0:.3f}  "
              f"precision {r['precision']['mean']:.3f}  recall {r['recall']['mean']:.3f}  (n={r['fid']['n']})")
    print(f"FID ratio default/textbook at {end} min: {ratio['mean']:.3f} +- {ratio['std'] or 0:.3f} "
          f"(target mean + std <= 0.333: {verdict}); unconditional {summarise(unconditional)['mean']:.3f}")
    if not args.no_save:
        write_results("gan_quality", {
            "judge": judge.name, "samples": args.samples, "split": "test", "seeds": seeds,
            "commits": sorted({cache[f"{n}|{s}|{m:g}"]["commit"] for n in RECIPES for s in seeds for m in marks}),
            "results": table, "fid_ratio_at_end": ratio, "unconditional_fid_ratio_at_end": summarise(unconditional),
            "target_ratio": round(1 / 3, 3), "target": verdict})
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for name, rows in table.items():
            ax.errorbar([r["minutes"] for r in rows], [r["fid"]["mean"] for r in rows],
                        yerr=[r["fid"]["std"] or 0 for r in rows], marker="o", capsize=3, label=name)
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_ylabel(f"FID ({judge.name} features, mean of {len(seeds)} seed(s))")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, RESULTS / "gan_quality.png")
        print(f"wrote {RESULTS / 'gan_quality.png'}")


if __name__ == "__main__":
    main()
