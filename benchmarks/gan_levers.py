"""Levers for the unconditional GAN (issue #35), one at a time at equal CPU time, chosen on the
validation split.

Every arm is `pixelforge train gan --no-conditional` on Fashion-MNIST for ``--minutes`` of this
CPU with one change against the plain unconditional GAN (no labels, no clusters: `--clusters
0`), or one change against another arm (an R1 arm against the spectral-norm D it needs; the
"clusters 50 + ..." arms against the clusters default). The "clusters" arms condition G and D on
k-means clusters of the training images (no labels); the "clusters 50 drawn ..." arms measure
the "clusters 50" generators again, drawing each sample's cluster with probability share **
power instead of by its share, or its latent from N(0, s^2 I) with s > 1 to spread the samples
out (sampling levers: no training of their own). Each trained generator
(EMA weights) is measured with ``--samples`` samples against as many images of the *validation*
split (5,000 training images that training never sees), under every judge of ``--judges`` (the
shipped Fashion-MNIST judges: fashion-mnist-cnn-v2 and fashion-mnist-cnn-gn-v1, another
architecture and seed; neither is used inside training): FID, KID, precision and recall. The
test split is not touched: a chosen recipe is reported on it by benchmarks/gan_quality.py.

Reported per arm: the means and standard deviations over its seeds, and the FID ratio to the
plain unconditional GAN of the same seed (mean and std over the seeds). Every measurement is kept
in a cache (benchmarks/results/gan_levers_cache.json, keyed by arm, its options, seed, minutes,
samples, judge and the machine's speed class, with the commit), so arms and seeds can be added
over sittings; run folders are runs/levers/ARM-OPTIONSHASH-sSEED-MINUTESmin-SPEED. Training is
time-budgeted: run it alone on the machine.

    PIXELFORGE_DATA=../shared/data python benchmarks/gan_levers.py [--arms a,b] [--seeds 0] [--minutes 5]

Writes benchmarks/results/gan_levers.json (gan_levers_SPEED.json off the reference machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from _common import RESULTS, commit, results_name, save_cache, speed_class, summarise, write_results

import pixelforge
from pixelforge import zoo
from pixelforge.pipelines.evaluate import evaluate_generator, real_images, resolve_extractor

BASELINE = "plain unconditional"
PLAIN = dict(clusters=0)  # no labels and no clusters: the arms below change one thing against it
ARMS = {  # name: train_gan options on top of conditional=False
    BASELINE: PLAIN,
    "SN D": dict(PLAIN, d_norm="sn"),
    "hinge + SN D": dict(PLAIN, loss="hinge", d_norm="sn"),
    "hinge + SN D + R1 0.1": dict(PLAIN, loss="hinge", d_norm="sn", r1_gamma=0.1),
    "ns + SN D + R1 0.1": dict(PLAIN, d_norm="sn", r1_gamma=0.1),
    "ns + SN D + R1 1": dict(PLAIN, d_norm="sn", r1_gamma=1.0),
    "DiffAugment translation": dict(PLAIN, diffaug="translation"),
    "batch 128": dict(PLAIN, batch_size=128),
    "EMA 0.9995": dict(PLAIN, ema_decay=0.9995),
    "resize upsampling": dict(PLAIN, upsample="resize"),
    "residual G and D": dict(PLAIN, arch="resnet"),
    "residual G and D + hinge + SN D": dict(PLAIN, arch="resnet", loss="hinge", d_norm="sn"),
    # at width 64 a residual step costs about 7 DCGAN steps; width 24 has about the DCGAN's multiplications
    "residual G and D width 24": dict(PLAIN, arch="resnet", width=24),
    "clusters 10": dict(clusters=10),
    "clusters 25": dict(clusters=25),
    "clusters 50": dict(clusters=50),  # the default for unlabelled data
    "clusters 100": dict(clusters=100),
    # one change against the clusters default
    "clusters 50 + batch 128": dict(clusters=50, batch_size=128),
    "clusters 50 + EMA 0.9995": dict(clusters=50, ema_decay=0.9995),
    "clusters 50 + DiffAugment translation": dict(clusters=50, diffaug="translation"),
    "clusters 50 + residual G and D": dict(clusters=50, arch="resnet"),
    "clusters 50 + resize upsampling": dict(clusters=50, upsample="resize"),
    "clusters 50 + rotation 1": dict(clusters=50, rotation=1.0),
    "clusters 50 + Adam betas 0 and 0.99": dict(clusters=50, beta1=0.0, beta2=0.99),
    "clusters 50 + lr 5e-4": dict(clusters=50, lr_g=5e-4, lr_d=5e-4),
    "clusters 50 + consistency 1": dict(clusters=50, consistency=1.0),
    # shifts of 2 pixels at 28 px, no flips (Fashion-MNIST's shoes all point one way)
    "clusters 50 + consistency 1 crop": dict(clusters=50, consistency=1.0, consistency_policy="crop"),
    "clusters 50 + minibatch std 4": dict(clusters=50, minibatch_std=4),
    "clusters 50 + hinge": dict(clusters=50, loss="hinge"),
    "clusters 50 + SN D + R1 0.1": dict(clusters=50, d_norm="sn", r1_gamma=0.1),  # R1 needs a D without batch norm
    # the label as a per-class bias of G's first feature map: fewer parameters, cheaper steps
    "clusters 50 + G label bias": dict(clusters=50, label_input="bias"),
    "rotation 1": dict(PLAIN, rotation=1.0),
    # Sampling levers: the "clusters 50" generators, drawing clusters by share ** power (1 = the shares)
    "clusters 50 drawn by sqrt share": dict(clusters=50, cluster_power=0.5),
    "clusters 50 drawn uniformly": dict(clusters=50, cluster_power=0.0),
    # ... and drawing latents from N(0, s^2 I), s > 1 to spread the samples out (for recall)
    "clusters 50 latent scale 1.1": dict(clusters=50, latent_scale=1.1),
    "clusters 50 latent scale 1.15": dict(clusters=50, latent_scale=1.15),
    "clusters 50 latent scale 1.2": dict(clusters=50, latent_scale=1.2),
    "clusters 50 latent scale 1.3": dict(clusters=50, latent_scale=1.3),
    "plain unconditional latent scale 1.15": dict(PLAIN, latent_scale=1.15),
}
SAMPLING = ("cluster_power", "latent_scale")  # options of the pipeline's sampling, not of training
METRICS = ("fid", "kid_mean", "precision", "recall")
SPEED = speed_class()  # a minute buys different numbers of steps on machines of different speeds
CACHE = RESULTS / "gan_levers_cache.json"


def _options(arm: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(ARMS[arm].items()))


def cache_key(arm: str, seed: int, minutes: float, samples: int, judge: str) -> str:
    return f"{arm}|{_options(arm)}|{seed}|{minutes:g}|{samples}|{judge}|{SPEED}"


def training_options(arm: str) -> dict:
    return {k: v for k, v in ARMS[arm].items() if k not in SAMPLING}


def trained_as(arm: str) -> str:
    """The arm whose run ``arm`` measures: the first with the same training options (a sampling
    lever measures the generators of the arm it samples differently)."""
    return next(a for a in ARMS if ARMS[a] == training_options(arm))


def run_dir(runs: Path, arm: str, seed: int, minutes: float) -> Path:
    """One folder per arm, options, seed and budget (an arm whose options change trains anew)."""
    arm = trained_as(arm)
    slug = "".join(c if c.isalnum() or c == "." else "-" for c in arm.lower())
    return runs / f"{slug}-{hashlib.sha256(_options(arm).encode()).hexdigest()[:6]}-s{seed}-{minutes:g}min-{SPEED}"


def measure(arm: str, seed: int, args, data: dict, judges: list, real, cache: dict) -> None:
    todo = [j for j in judges if cache_key(arm, seed, args.minutes, args.samples, j.name) not in cache]
    if not todo:
        return
    run = run_dir(args.runs_dir, arm, seed, args.minutes)
    trained = run / "levers_trained"  # written once training returns: an interrupted run trains anew
    if not trained.is_file():
        pixelforge.train_gan("fashion-mnist", run, overwrite=True, seed=seed, conditional=False,
                             minutes=args.minutes, progress=False, **training_options(arm))
        trained.touch()
    pipe = pixelforge.load(run, ema=True)
    for key in SAMPLING:  # the arm's sampling, else the neutral one (clusters by share, z ~ N(0, I))
        setattr(pipe, key, ARMS[arm].get(key, 1.0))
    steps = pixelforge.runs.Run.open(run).load_state()["step"]
    for judge in todo:
        m = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid", "kid", "precision", "recall"),
                               real=real, progress=False, seed=seed, split="val")
        cache[cache_key(arm, seed, args.minutes, args.samples, judge.name)] = {
            "steps": steps, **{k: round(float(m[k]), 5) for k in METRICS}, "commit": commit()}
        save_cache(args.cache, cache)
        print(f"{arm:<26} seed {seed} {args.minutes:g} min step {steps:>6} {judge.name:<24} FID {m['fid']:7.3f} "
              f"precision {m['precision']:.3f} recall {m['recall']:.3f}", flush=True)


def table(cache: dict, arms: list[str], seeds: list[int], minutes: float, samples: int, judge: str) -> dict:
    """Per arm over the seeds it has: means and stds, and the FID ratio to the baseline per seed."""
    out = {}
    for arm in arms:
        rows = {s: cache.get(cache_key(arm, s, minutes, samples, judge)) for s in seeds}
        rows = {s: r for s, r in rows.items() if r is not None}
        if not rows:
            continue
        entry = {"seeds": list(rows), "steps": summarise([r["steps"] for r in rows.values()]),
                 **{k: summarise([r[k] for r in rows.values()]) for k in METRICS}}
        base = {s: cache.get(cache_key(BASELINE, s, minutes, samples, judge)) for s in rows}
        if all(base.values()):
            entry["fid_ratio_to_baseline"] = summarise([rows[s]["fid"] / base[s]["fid"] for s in rows])
        out[arm] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", default=",".join(ARMS), help="comma list of arm names (see ARMS)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--minutes", type=float, default=5.0, help="training minutes per arm")
    ap.add_argument("--judges", default=",".join(zoo.judges_for("fashion-mnist")[:2]))
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/levers"))
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--no-save", action="store_true", help="measure into the cache only (a trial run)")
    args = ap.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"unknown arm(s) {', '.join(unknown)}; choose from: {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    data = {"spec": "fashion-mnist", "size": 28, "channels": 1}
    judges = [resolve_extractor(name, "fashion-mnist") for name in args.judges.split(",")]
    real = real_images(data, args.samples, "val")
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    for seed in seeds:
        for arm in ([BASELINE] if BASELINE not in arms else []) + arms:
            measure(arm, seed, args, data, judges, real, cache)
    by_judge = {j.name: table(cache, list(ARMS), seeds, args.minutes, args.samples, j.name) for j in judges}
    for judge, rows in by_judge.items():
        print(f"\n{judge}: {args.minutes:g} min, validation split, {args.samples} samples")
        print(f"{'arm':<26} {'steps':>7} {'FID':>8} {'ratio':>6} {'precision':>9} {'recall':>6} seeds")
        for arm, e in rows.items():
            ratio = e.get("fid_ratio_to_baseline", {}).get("mean")
            print(f"{arm:<26} {e['steps']['mean']:>7.0f} {e['fid']['mean']:>8.3f} "
                  f"{'' if ratio is None else f'{ratio:.3f}':>6} {e['precision']['mean']:>9.3f} "
                  f"{e['recall']['mean']:>6.3f} {e['seeds']}")
    if not args.no_save:
        write_results(results_name("gan_levers", SPEED), {
            "speed_class": SPEED, "split": "val", "samples": args.samples, "minutes": args.minutes,
            "baseline": BASELINE, "arms": {a: ARMS[a] for a in ARMS}, "by_judge": by_judge})


if __name__ == "__main__":
    main()
