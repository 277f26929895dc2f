"""Generated images as training data: the Classification Accuracy Score of the default GAN and the
augmentation study (a classifier trained on a few real images per class, with and without
generated ones), both measured on the Fashion-MNIST test images.

    PIXELFORGE_DATA=../shared/data python benchmarks/generative_augmentation.py [--gan-steps 8144]

The generator is the default GAN recipe (class-conditional) trained for ``--gan-steps`` steps
(a fixed count, so the result does not depend on the machine's speed; 8,144 is what 8 minutes
gave when the study was designed) on the **whole** training split: it has seen far more real
images than the scarce-data classifiers it helps, so this measures what a generator trained
elsewhere adds, not what a generator trained on the same few images can add. The run is kept in
runs/bench-augment-gan and reused. Then `pixelforge cas` (`classification_accuracy_score`:
1,000 generated images per class, 600 classifier steps, against the same number of real ones) and
`pixelforge augment` (`augmentation_study`: 50 / 100 / 500 real images per class, 3 seeds, 500
generated per class, 400 steps). Writes benchmarks/results/generative_augmentation.json and
docs/images/augmentation.png.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import write_results

import pixelforge
from pixelforge.apps.augment import augmentation_study, classification_accuracy_score

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gan-steps", type=int, default=8144)
    ap.add_argument("--run", default="runs/bench-augment-gan")
    ap.add_argument("--cas-per-class", type=int, default=1000)
    ap.add_argument("--cas-steps", type=int, default=600)
    ap.add_argument("--sizes", default="50,100,500", help="real images per class")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--synthetic", type=int, default=500, help="generated images per class")
    ap.add_argument("--steps", type=int, default=400, help="classifier steps per arm")
    args = ap.parse_args()

    run = Path(args.run)
    if run.is_dir() and pixelforge.runs.Run.open(run).load_state()["step"] >= args.gan_steps:
        print(f"reusing {run}")
    else:
        resume = run.is_dir()
        pixelforge.train_gan(None if resume else "fashion-mnist", run, resume=resume, max_steps=args.gan_steps,
                             seed=0)
    cas = classification_accuracy_score(run, per_class=args.cas_per_class, steps=args.cas_steps, progress=True)
    print(f"CAS {cas['cas']:.2%} (real, same budget: {cas['real_accuracy']:.2%})")
    study = augmentation_study(run, run / "augmentation", sizes=[int(s) for s in args.sizes.split(",")],
                               seeds=[int(s) for s in args.seeds.split(",")], synthetic_per_class=args.synthetic,
                               steps=args.steps, progress=True)
    for row in study["rows"]:
        print(f"{row['per_class']:>4} per class: real {row['real']['mean']:.2%}, real + generated "
              f"{row['real+generated']['mean']:.2%} ({row['gain'] * 100:+.2f} points)")
    shutil.copyfile(run / "augmentation" / "augmentation.png", DOCS / "augmentation.png")
    write_results("generative_augmentation", {
        "generator": f"the default GAN recipe (class-conditional, Adam 1e-3) on the whole Fashion-MNIST training "
                     f"split, {args.gan_steps} steps (seed 0): {run}",
        "generator_trained_on": "the whole train split, not the scarce subsets",
        "cas": {"command": f"pixelforge cas {run} --per-class {args.cas_per_class} --steps {args.cas_steps}",
                "cas_accuracy": round(cas["cas"], 4), "real_same_budget_accuracy": round(cas["real_accuracy"], 4),
                "train_images": cas["train_images"], "test_images": cas["test_images"]},
        "augmentation": {"command": f"pixelforge augment {run} --per-class {args.sizes} --seeds "
                                    f"{len(args.seeds.split(','))} --synthetic {args.synthetic} --steps {args.steps}",
                         **study}})


if __name__ == "__main__":
    main()
