"""Train the shipped Fashion-MNIST judge networks on the training split only and put them in
the zoo, so that no FID the project reports comes from a network that saw validation or test
images, and no ranking rests on one feature space.

- ``fashion-mnist-cnn-v2``: the default ``cnn`` recipe (3 VGG-style stages, widths 32-64-128,
  batch norm), seed 0: the default judge of Fashion-MNIST generators.
- ``fashion-mnist-cnn-gn-v1``: the second judge, another architecture and seed (2 stages,
  widths 32-64, group norm, 64-d features), seed 1.

Both train on the train split (Fashion-MNIST's 60,000 training images less the 5,000 of the
validation split) for a fixed number of epochs, so the weights do not depend on how fast the
machine is; the test split is touched once, for the accuracy on the card.

    PIXELFORGE_DATA=../shared/data python benchmarks/train_judges.py [--only NAME] [--runs-dir runs]

Writes src/pixelforge/zoo/NAME.safetensors and NAME.json for each judge and
benchmarks/results/judges.json (the judges' accuracies, epochs and feature sizes); keeps the
runs in runs/judge-NAME. ``--report-only`` rewrites judges.json from the runs and cards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import write_results

import pixelforge
from pixelforge import zoo

COMMON = dict(batch_size=128)
JUDGES = {
    "fashion-mnist-cnn-v2": dict(seed=0, epochs=16, options={}),
    "fashion-mnist-cnn-gn-v1": dict(seed=1, epochs=12, options=dict(blocks=2, width=32, norm="gn")),
}


def command(name: str) -> str:
    spec = JUDGES[name]
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in {**COMMON, **spec["options"]}.items())
    return (f"PIXELFORGE_DATA=../shared/data python benchmarks/train_judges.py --only {name}  (= pixelforge "
            f"train classifier --data fashion-mnist --epochs {spec['epochs']} --seed {spec['seed']} {flags})")


def report(runs_dir: str) -> None:
    """benchmarks/results/judges.json from the shipped cards and the runs that trained them."""
    rows = {}
    for name, spec in JUDGES.items():
        run = Path(runs_dir) / f"judge-{name}"
        if not (zoo.ZOO_DIR / f"{name}.json").is_file() or not (run / "evaluation.json").is_file():
            continue
        info, ev = zoo.card(name), json.loads((run / "evaluation.json").read_text())
        net = zoo.load_pretrained(name, device="cpu")
        rows[name] = {"architecture": info["config"], "seed": spec["seed"], "epochs": spec["epochs"],
                      "data_split": info["data_split"], "feature_dim": net.feature_dim, "tta": ev["tta"],
                      "val_accuracy": round(ev["val_accuracy"], 4), "test_accuracy": round(info["test_accuracy"], 4),
                      "test_images": info["test_images"], "command": info["command"]}
        print(f"{name}: trained on the {info['data_split']} split, {net.feature_dim}-d features, validation "
              f"{ev['val_accuracy']:.2%}, test {info['test_accuracy']:.2%} ({ev['tta']} views)")
    write_results("judges", {"judges": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(JUDGES), help="train one judge (default: all)")
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--report-only", action="store_true", help="only rewrite benchmarks/results/judges.json")
    args = ap.parse_args()
    for name in [] if args.report_only else [args.only] if args.only else JUDGES:
        spec = JUDGES[name]
        run = Path(args.runs_dir) / f"judge-{name}"
        pixelforge.train_classifier("fashion-mnist", run, overwrite=True, seed=spec["seed"], epochs=spec["epochs"],
                                    **COMMON, **spec["options"])
        zoo.export(run, name, command(name))
    report(args.runs_dir)


if __name__ == "__main__":
    main()
