"""``evaluate_run``: a generator run's FID, KID, IS and precision/recall on the test split
(or the validation split on request), written to ``RUN/metrics.json``. It loads runs of any family, so it sits above the pipelines; the
measuring itself is :mod:`pixelforge.pipelines.evaluate`.
"""

from __future__ import annotations

import datetime as _dt
import os

from .api import load
from .data import report_split
from .errors import PixelforgeError
from .metrics import METRICS
from .families import generator_families, run_family
from .pipelines.common import check_unseen
from .pipelines.evaluate import check_sampling_options, evaluate_generator
from .runs import Run, atomic_write_json


EVAL_SPLITS = ("test", "val")


def evaluate_run(run_dir: str | os.PathLike, n: int = 10000, extractor: str | None = None, metrics=METRICS,
                 seed: int = 0, progress: bool = True, device: str = "auto", split: str | None = None,
                 **sampling) -> dict:
    """Evaluate a generator run and write ``RUN/metrics.json``. ``split``: the real images, "test"
    (the default: the number to report) or "val" (to compare settings); folder datasets have only
    "val". ``sampling``: the loader's sampling options (a diffusion run's ``steps``, ``guidance``,
    ``eta``, ``solver``; a GAN run's ``latent_scale``); the file records the settings the samples
    were drawn with, defaults included, and the split they were measured on."""
    if split is not None and split not in EVAL_SPLITS:
        raise PixelforgeError(f"eval measures on the test or val split, not {split!r}")
    run = Run.open(run_dir)
    family = run_family(run_dir)
    check_sampling_options(run_dir, family, sampling)
    if not family.generates:
        raise PixelforgeError(f"{run_dir} is a {family.name} run; eval needs a generator run "
                              f"({', '.join(generator_families())})")
    data = run.config["data"]
    split = split or report_split(data["spec"])
    check_unseen(data, split, "eval --split val")
    pipe = load(run_dir, device=device, **sampling)
    result = evaluate_generator(pipe, data, n, extractor, metrics, seed, progress, split=split)
    ckpt = run.latest_checkpoint()
    result = {**result, "step": int(ckpt.name.split("_")[1]) if ckpt else None,
              "evaluated": _dt.datetime.now().isoformat(timespec="seconds"), "seed": seed,
              **({"sampling": pipe.sampling} if hasattr(pipe, "sampling") else {})}
    atomic_write_json(run.path / "metrics.json", result)
    return result
