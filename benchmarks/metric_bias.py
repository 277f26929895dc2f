"""How the generator metrics behave when nothing is wrong: real Fashion-MNIST images
(training split) measured against real ones (test split) at several sample sizes, and
precision/recall at several k, all in the shipped default judge's feature space (FID under
the other shipped Fashion-MNIST judges beside it).

    PIXELFORGE_DATA=../shared/data python benchmarks/metric_bias.py

A perfect generator would score like the real training images do here, so these are the
floors that FID, KID and precision/recall of a generator should be read against
(docs/evaluation.md). Writes benchmarks/results/metric_bias.json.
"""

from __future__ import annotations

import time

from _common import write_results

from pixelforge import zoo
from pixelforge.data import load_dataset
from pixelforge.metrics.extractor import extract
from pixelforge.metrics.fidelity import fid_from_features, kid_from_features, precision_recall_from_features

SIZES = (100, 500, 2000, 10000)
KS = (1, 3, 5, 10)


def features(judge) -> tuple:
    """The judge's features of the training images and of the test images."""
    train, _ = extract(judge, load_dataset("fashion-mnist").images, with_logits=False)
    test, _ = extract(judge, load_dataset("fashion-mnist", split="test").images, with_logits=False)
    return train, test


def main() -> None:
    default, *other_judges = zoo.judges_for("fashion-mnist")
    judge = zoo.load_pretrained(default)
    t = time.perf_counter()
    train, test = features(judge)
    rows = []
    print(f"real (train) vs real (test), {judge.name} features")
    print(f"{'N':>6} {'FID':>8} {'KID':>10} {'KID std':>9}")
    for n in SIZES:
        fid = fid_from_features(train[:n], test[:n])
        kid, kid_std = kid_from_features(train[:n], test[:n], subset_size=min(1000, n))
        rows.append({"n": n, "fid": round(fid, 4), "kid": round(kid, 5), "kid_std": round(kid_std, 5)})
        print(f"{n:>6} {fid:>8.3f} {kid:>10.5f} {kid_std:>9.5f}")
    pr = []
    print(f"\nprecision / recall, N = 2000 each\n{'k':>3} {'precision':>10} {'recall':>8}")
    for k in KS:
        p, r = precision_recall_from_features(train[:2000], test[:2000], k=k)
        pr.append({"k": k, "precision": round(p, 4), "recall": round(r, 4)})
        print(f"{k:>3} {p:>10.4f} {r:>8.4f}")
    others = {}
    for name in other_judges:
        a, b = features(zoo.load_pretrained(name))
        others[name] = [{"n": n, "fid": round(fid_from_features(a[:n], b[:n]), 4)} for n in SIZES]
        print(f"{name}: FID " + ", ".join(f"{r['fid']:.3f} (N = {r['n']})" for r in others[name]))
    write_results("metric_bias", {"judge": judge.name, "real_vs_real": rows, "precision_recall_real_vs_real": pr,
                                  "fid_real_vs_real_other_judges": others,
                                  "seconds": round(time.perf_counter() - t, 1)})


if __name__ == "__main__":
    main()
