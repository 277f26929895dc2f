"""Generated images as training data: the Classification Accuracy Score of the default GAN,
measured on the Fashion-MNIST test images.

    PIXELFORGE_DATA=../shared/data python benchmarks/generative_augmentation.py [--gan-steps 8144]

The generator is the default GAN recipe (class-conditional) trained for ``--gan-steps`` steps
(a fixed count, so the result does not depend on the machine's speed; 8,144 is what 8 minutes
gave when the study was designed) on the whole training split, kept in runs/bench-augment-gan and
reused (scarce_augmentation.py's full-split generator by default). Then `pixelforge cas`
(`classification_accuracy_score`: 1,000 generated images per class, 600 classifier steps, against
the same number of real ones). Writes benchmarks/results/generative_augmentation.json. Whether
generated images help a scarce training set is scarce_augmentation.py's question.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import write_results

import pixelforge
from pixelforge.apps.augment import classification_accuracy_score

GAN_STEPS = 8144
GAN_RUN = "runs/bench-augment-gan"


def full_split_generator(run: Path, steps: int = GAN_STEPS) -> Path:
    """The default (class-conditional) GAN recipe trained on the whole training split for ``steps``
    steps (seed 0) in ``run``: reused when done, resumed when stopped."""
    if run.is_dir() and pixelforge.runs.Run.open(run).load_state()["step"] >= steps:
        print(f"reusing {run}")
    else:
        resume = run.is_dir()
        pixelforge.train_gan(None if resume else "fashion-mnist", run, resume=resume, max_steps=steps, seed=0)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gan-steps", type=int, default=GAN_STEPS)
    ap.add_argument("--run", default=GAN_RUN)
    ap.add_argument("--cas-per-class", type=int, default=1000)
    ap.add_argument("--cas-steps", type=int, default=600)
    args = ap.parse_args()

    run = full_split_generator(Path(args.run), args.gan_steps)
    cas = classification_accuracy_score(run, per_class=args.cas_per_class, steps=args.cas_steps, progress=True)
    print(f"CAS {cas['cas']:.2%} (real, same budget: {cas['real_accuracy']:.2%})")
    write_results("generative_augmentation", {
        "generator": f"the default GAN recipe (class-conditional, Adam 1e-3) on the whole Fashion-MNIST training "
                     f"split, {args.gan_steps} steps (seed 0): {run}",
        "generator_trained_on": "the whole train split, not the scarce subsets",
        "cas": {"command": f"pixelforge cas {run} --per-class {args.cas_per_class} --steps {args.cas_steps}",
                "cas_accuracy": round(cas["cas"], 4), "real_same_budget_accuracy": round(cas["real_accuracy"], 4),
                "train_images": cas["train_images"], "test_images": cas["test_images"]}})


if __name__ == "__main__":
    main()
