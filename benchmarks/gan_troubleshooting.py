"""Evidence for docs/gan_troubleshooting.md: five short GAN runs on Fashion-MNIST, each
showing one failure and what the project's options do about it, at equal step counts.

    PIXELFORGE_DATA=../shared/data python benchmarks/gan_troubleshooting.py [--train] [--steps 1200]

``--train`` trains the runs (runs/ts/NAME, with the options in RUNS and LONG, through the
real CLI); without it the existing runs are analysed. For every run: FID/KID/precision/recall
of 2,000 samples of the EMA generator and of the raw generator (the default judge, against the
test set) and their FID under the second, independently trained judge; the discriminator's
mean logit on 2,000 training images it saw and on 2,000 test images it never saw (the gap is
D's overfitting), and the last logged losses. Writes benchmarks/results/gan_troubleshooting.json
and docs/images/troubleshoot_*.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _common import write_results

from pixelforge import zoo
from pixelforge.cli import main as cli
from pixelforge.data import load_dataset
from pixelforge.images import make_grid, pyplot, save_figure
from pixelforge.pipelines.common import load_weights_into, open_model
from pixelforge.pipelines.evaluate import evaluate_generator
from pixelforge.pipelines.gan import load_gan
from pixelforge.runs import Run
from pixelforge.zoo.catalog import JUDGES, OTHER_JUDGES

ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = ROOT / "runs" / "ts"
IMAGES = ROOT / "docs" / "images"
# Every run is plain unconditional (no labels, no clusters) at Adam 2e-4/2e-4 (the default
# recipe until 2026-11-23, when these were measured); each names only what it changes.
BASE = ["--no-conditional", "--clusters", "0", "--lr-g", "2e-4", "--lr-d", "2e-4"]
RUNS = {  # name: (CLI options after `train gan --data fashion-mnist` + BASE, what it shows)
    "default": ([], "ns loss, batch-norm D, Adam 2e-4/2e-4 (the default recipe until 2026-11-23)"),
    "d-overpower": (["--lr-d", "2e-3", "--lr-g", "5e-5"], "D learning rate 40x G's"),
    "d-overpower-sn-hinge": (["--lr-d", "2e-3", "--lr-g", "5e-5", "--loss", "hinge", "--d-norm", "sn"],
                             "same learning rates, hinge loss + spectral norm"),
    "small": (["--limit", "1000"], "1,000 training images"),
    "small-diffaug": (["--limit", "1000", "--diffaug", "color,translation,cutout"],
                      "1,000 training images + DiffAugment"),
}
# The EMA's long-run view: the baseline recipe for as many steps as 10 minutes of it made on the
# 2-core machine when it was first measured (benchmarks/gan_quality.py's run before 2026-11-23).
LONG = {"long-default": ([], "the 2e-4 unconditional recipe, 10,865 steps (10 minutes on 2 cores)")}
LONG_STEPS = 10_865
N = 2000
JUDGE, SECOND_JUDGE = JUDGES["fashion-mnist"], OTHER_JUDGES["fashion-mnist"][0]


def train(steps: int, long_steps: int) -> None:
    plan = [(name, options, steps) for name, (options, _) in RUNS.items()]
    plan += [(name, options, long_steps) for name, (options, _) in LONG.items()]
    for name, options, budget in plan:
        code = cli(["train", "gan", "--data", "fashion-mnist", "--max-steps", str(budget), "--run-dir",
                    str(RUNS_DIR / name), "--overwrite", "--no-progress", *BASE, *options])
        assert code == 0, name


@torch.no_grad()
def d_logits(run_dir: Path, images: torch.Tensor) -> float:
    """The discriminator's mean raw logit on uint8 images."""
    r, _, gan, _ = open_model(run_dir, "gan", "cpu")
    load_weights_into(r, gan.discriminator, "discriminator")
    d = gan.discriminator.eval()
    x = images.float().div(127.5).sub(1)
    return float(torch.cat([d(x[i:i + 500], None).float().flatten() for i in range(0, len(x), 500)]).mean())


def records(run_dir: Path) -> list[dict]:
    return [r for r in Run.open(run_dir).read_metrics() if "d_loss" in r]


def analyse() -> dict:
    judge, second = zoo.load_pretrained(JUDGE), zoo.load_pretrained(SECOND_JUDGE)
    real = load_dataset("fashion-mnist", split="test", limit=N).images
    seen = load_dataset("fashion-mnist", limit=N).images  # training images every full-data run saw
    seen_small = load_dataset("fashion-mnist", limit=1000).images  # all that the --limit 1000 runs saw
    out = {}
    for name, (options, what) in {**RUNS, **LONG}.items():
        path = RUNS_DIR / name
        if not (path / "config.json").is_file():
            print(f"{name}: no run at {path}; left out")
            continue
        data = Run.open(path).config["data"]
        row = {"options": " ".join(options) or "(defaults)", "what": what,
               "steps": int(Run.open(path).latest_checkpoint().name.split("_")[1])}  # the weights measured
        for which, ema in (("ema", True), ("raw", False)):
            gan = load_gan(path, device="cpu", ema=ema)
            m = evaluate_generator(gan, data, N, judge, progress=False, real=real)
            other = evaluate_generator(gan, data, N, second, metrics=("fid",), progress=False, real=real)
            row[which] = {**{k: round(float(m[k]), 4) for k in ("fid", "kid_mean", "precision", "recall")},
                          "other_judges": {SECOND_JUDGE: {"fid": round(float(other["fid"]), 4)}}}
        train_images = seen_small if "--limit" in options else seen
        row["d_logit_train"] = round(d_logits(path, train_images), 3)
        row["d_logit_test"] = round(d_logits(path, real), 3)
        recs = records(path)
        last = recs[-5:]
        row["last_losses"] = {k: round(sum(r[k] for r in last) / len(last), 3)
                              for k in ("d_loss", "g_loss", "d_real", "d_fake")}
        row["logged"] = logged_summary(recs)
        out[name] = row
        print(f"{name:<22} steps {row['steps']:>5}  EMA FID {row['ema']['fid']:7.3f} P {row['ema']['precision']:.3f} "
              f"R {row['ema']['recall']:.3f} | raw FID {row['raw']['fid']:7.3f} | D logit train "
              f"{row['d_logit_train']:+.2f} test {row['d_logit_test']:+.2f}")
    return out


def logged_summary(recs: list[dict]) -> dict:
    """The logged curves in a few numbers: 5th / 50th / 95th percentiles of the losses and of
    D's score gap (mean logit on real minus on generated), and the share of logged steps with
    ``d_loss`` below 0.15 (D all but certain); the training speed between the first and last record."""
    def percentiles(values: list[float]) -> dict:
        v = sorted(values)
        return {f"p{q}": round(v[min(len(v) - 1, int(len(v) * q / 100))], 2) for q in (5, 50, 95)}

    return {"d_loss": percentiles([r["d_loss"] for r in recs]), "g_loss": percentiles([r["g_loss"] for r in recs]),
            "score_gap": percentiles([r["d_real"] - r["d_fake"] for r in recs]),
            "d_loss_under_0_15_share": round(sum(r["d_loss"] < 0.15 for r in recs) / len(recs), 2),
            "steps_per_s": round((recs[-1]["step"] - recs[0]["step"]) / (recs[-1]["time"] - recs[0]["time"]), 1)}


def _smooth(values: list[float], k: int = 5) -> list[float]:
    return [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


def _samples(name: str, ema: bool = True, n: int = 36) -> torch.Tensor:
    return load_gan(RUNS_DIR / name, device="cpu", ema=ema).sample(n, seed=0)


def figure(names: list[str], path: Path, results: dict) -> None:
    """Per run, one column: losses, D logits on real/fake, EMA samples."""
    plt = pyplot()
    fig, axes = plt.subplots(3, len(names), figsize=(4.2 * len(names), 10.5), dpi=90,
                             gridspec_kw={"height_ratios": [1, 1, 1.5]})
    for col, name in enumerate(names):
        recs = records(RUNS_DIR / name)
        steps = [r["step"] for r in recs]
        ax = axes[0, col]
        for key in ("d_loss", "g_loss"):
            ax.plot(steps, _smooth([r[key] for r in recs]), label=key)
        ax.set_title(f"{name}\n{RUNS[name][1]}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=8)
        ax = axes[1, col]
        for key in ("d_real", "d_fake"):
            ax.plot(steps, _smooth([r[key] for r in recs]), label=f"{key} (mean logit)")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=8)
        ax = axes[2, col]
        ax.imshow(make_grid(_samples(name), nrow=6), cmap="gray")
        r = results[name]["ema"]
        ax.set_title(f"EMA samples: FID {r['fid']:.2f}, P {r['precision']:.2f}, R {r['recall']:.2f}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def ema_figure(name: str, path: Path, results: dict) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.6), dpi=90)
    for ax, (which, ema) in zip(axes, (("raw", False), ("ema", True))):
        ax.imshow(make_grid(_samples(name, ema), nrow=6), cmap="gray")
        r = results[name][which]
        ax.set_title(f"{'raw G' if which == 'raw' else 'EMA of G (0.999)'}, step {results[name]['steps']}: "
                     f"FID {r['fid']:.2f}, R {r['recall']:.2f}", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def run() -> None:
    global RUNS_DIR
    p = argparse.ArgumentParser()
    p.add_argument("--train", action="store_true")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--long-steps", type=int, default=LONG_STEPS)
    p.add_argument("--runs-dir", type=Path, default=RUNS_DIR)
    p.add_argument("--images-dir", type=Path, default=IMAGES)
    args = p.parse_args()
    RUNS_DIR = args.runs_dir
    images = args.images_dir
    if args.train:
        train(args.steps, args.long_steps)
    results = analyse()
    for names, png in ((["default", "d-overpower", "d-overpower-sn-hinge"], "troubleshoot_d_overpower.png"),
                       (["small", "small-diffaug"], "troubleshoot_small_data.png")):
        if all(n in results for n in names):
            figure(names, images / png, results)
    for name in ("long-default", "default"):
        if name in results:
            ema_figure(name, images / "troubleshoot_ema.png", results)
            break
    write_results("gan_troubleshooting", {"samples": N, "judge": JUDGE, "second_judge": SECOND_JUDGE,
                                          "runs": results})
    print(json.dumps({k: v["ema"] for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    run()
