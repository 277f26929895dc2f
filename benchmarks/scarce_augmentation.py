"""Generated images for a scarce training set, lever by lever: the per-budget study of
:mod:`pixelforge.apps.scarce_data` on Fashion-MNIST (classic augmentation arms against arms that
add images from a class-conditional GAN trained on the same few images, and one that adds images
from a GAN trained on the whole training split, reported apart).

    PIXELFORGE_DATA=../shared/data python benchmarks/scarce_augmentation.py \\
        [--budgets 10,50,100,500] [--seeds 0,1,2] [--full-generator RUN]

Every choice is made on each budget's own validation images (a tenth of the budget); the test
split is scored once per arm and seed at the arm's chosen step count. Fits are counted in steps,
not minutes, so the figures do not depend on the machine's speed. Every fit is cached in
benchmarks/results/scarce_augmentation_cache.json (the runs in --root), so the study resumes
across sittings; after each budget the results so far are written to
benchmarks/results/scarce_augmentation.json and docs/images/scarce_augmentation.png, with the
first seed's per-budget GAN samples (docs/images/scarce_augmentation_gan_kK.png).
The full-split generator is --full-generator, or else generative_augmentation.py's GAN
(trained here if missing).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _common import RESULTS, commit, write_results
from generative_augmentation import GAN_RUN, full_split_generator

import pixelforge
from pixelforge.apps.scarce_data import DIFFUSION_STEPS, GAN_STEPS, STEPS, BudgetStudy, write_report

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"
CACHE = RESULTS / "scarce_augmentation_cache.json"


def generator_steps(run: Path) -> int | None:
    """The full-split generator's step count; where its run is gone (a resumed study whose full-split
    fits are all cached does not need it), the count the results file recorded for it, else None."""
    if run.exists():
        return pixelforge.runs.Run.open(run).load_state()["step"]
    saved = RESULTS / "scarce_augmentation.json"
    before = json.loads(saved.read_text()).get("full_generator", {}) if saved.exists() else {}
    return before.get("steps") if before.get("run") == str(run) else None


def markdown_table(results: dict) -> str:
    """The table of docs/evaluation.md, every figure marked with its place in the results file."""
    key = "scarce_augmentation.json:rows"
    lines = ["| real images per class | arm | steps (chosen on validation) | validation accuracy | "
             "test accuracy, mean +- std |", "|---:|---|---:|---:|---:|"]
    for i, row in enumerate(results["rows"]):
        k = row["per_class"]
        for j, a in enumerate(row["arms"]):
            at = f"{key}[{i}].arms[{j}]"
            name = f"**{a['arm']}**" if a["arm"] in (row.get("best_classic"), row.get("best_generative")) else a["arm"]
            lines.append(f"| {k}<!-- {key}[{i}].per_class --> | {name} | {a['steps']}<!-- {at}.steps --> | "
                         f"{a['val']['mean']:.2%}<!-- {at}.val.mean --> | {a['test']['mean']:.2%}<!-- {at}.test.mean --> "
                         f"+- {a['test']['std']:.2%}<!-- {at}.test.std*100 --> |")
        if row.get("gain"):
            verdict = "met" if row["met"] else "missed"
            lines.append(f"| {k} | best generative - best classic (per seed) | | | "
                         f"**{row['gain']['mean'] * 100:+.2f}**<!-- {key}[{i}].gain.mean*100 --> +- "
                         f"{row['gain']['std'] * 100:.2f} points<!-- {key}[{i}].gain.std*100 --> "
                         f"({row['target']}: {verdict}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="10,50,100,500", help="real images per class, comma separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", default=",".join(map(str, STEPS)), help="classifier step counts to choose from")
    ap.add_argument("--gan-steps", type=int, default=GAN_STEPS, help="steps of each per-budget GAN")
    ap.add_argument("--diffusion-steps", type=int, default=DIFFUSION_STEPS, help="steps of each per-budget diffusion model")
    ap.add_argument("--full-generator", default=None, help="a conditional GAN run trained on the whole split")
    ap.add_argument("--root", default="runs/bench-scarce")
    ap.add_argument("--markdown", action="store_true", help="print the docs table of the saved results and stop")
    args = ap.parse_args()
    if args.markdown:
        print(markdown_table(json.loads((RESULTS / "scarce_augmentation.json").read_text())))
        return

    # without --full-generator: generative_augmentation.py's GAN, trained first if missing
    full = Path(args.full_generator) if args.full_generator else full_split_generator(Path(GAN_RUN))
    full_steps = generator_steps(full)
    study = BudgetStudy(args.root, "fashion-mnist", steps=[int(s) for s in args.steps.split(",")], full_generator=full,
                        gan_steps=args.gan_steps, diffusion_steps=args.diffusion_steps, cache=CACHE, progress=True)
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    done = []
    for k in budgets:
        done.append(k)
        result = study.run(done, seeds)
        row = next(r for r in result["rows"] if r["per_class"] == k)
        for a in row["arms"]:
            print(f"{k:>4} per class | {a['arm']:<55} | {a['steps']:>5} steps | val {a['val']['mean']:.2%} | "
                  f"test {a['test']['mean']:.2%} +- {a['test']['std']:.2%}")
        if row.get("gain"):
            print(f"{k:>4} per class | best generative ({row['best_generative']}) - best classic "
                  f"({row['best_classic']}): {row['gain']['mean']:+.2%} +- {row['gain']['std']:.2%} "
                  f"[{row['target']}: {'met' if row['met'] else 'missed'}]")
        out = Path(args.root) / "report"
        write_report(result, out)
        shutil.copyfile(out / "augmentation.png", DOCS / "scarce_augmentation.png")
        for family in ("gan", "diffusion"):  # what a generator trained on the budget's own images draws
            grid = Path(args.root) / f"k{k}-s{seeds[0]}" / family / "per_class.png"
            if grid.is_file():
                shutil.copyfile(grid, DOCS / f"scarce_augmentation_{family}_k{k}.png")
        write_results("scarce_augmentation", {
            "commit": commit(),
            "command": f"python benchmarks/scarce_augmentation.py --budgets {','.join(map(str, sorted(done)))} "
                       f"--seeds {args.seeds} --steps {args.steps} --gan-steps {args.gan_steps} "
                       f"--diffusion-steps {args.diffusion_steps}"
                       + (f" --full-generator {args.full_generator}" if args.full_generator else ""),
            **result,
            "full_generator": {"run": str(full), "steps": full_steps,
                               "trained_on": "the whole Fashion-MNIST training split (validation images excluded)"}})


if __name__ == "__main__":
    main()
