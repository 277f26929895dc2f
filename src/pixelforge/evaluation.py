"""``evaluate_run``: a generator run's FID, KID, IS and precision/recall, written to
``RUN/metrics.json``. It loads runs of any family, so it sits above the pipelines; the
measuring itself is :mod:`pixelforge.pipelines.evaluate`.
"""

from __future__ import annotations

import datetime as _dt
import os

from .api import load
from .errors import PixelforgeError
from .metrics import METRICS
from .families import generator_families, run_family
from .pipelines.evaluate import check_sampling_options, evaluate_generator
from .runs import Run, atomic_write_json


def evaluate_run(run_dir: str | os.PathLike, n: int = 10000, extractor: str | None = None, metrics=METRICS,
                 seed: int = 0, progress: bool = True, device: str = "auto", **sampling) -> dict:
    """Evaluate a generator run and write ``RUN/metrics.json``. ``sampling``: the diffusion loader's
    options (``steps``, ``guidance``, ``eta``, ``solver``); a diffusion run's file records the
    settings its samples were drawn with, defaults included."""
    run = Run.open(run_dir)
    family = run_family(run_dir)
    check_sampling_options(run_dir, family, sampling)
    if not family.generates:
        raise PixelforgeError(f"{run_dir} is a {family.name} run; eval needs a generator run "
                              f"({', '.join(generator_families())})")
    pipe = load(run_dir, device=device, **sampling)
    result = evaluate_generator(pipe, run.config["data"], n, extractor, metrics, seed, progress)
    ckpt = run.latest_checkpoint()
    result = {**result, "step": int(ckpt.name.split("_")[1]) if ckpt else None,
              "evaluated": _dt.datetime.now().isoformat(timespec="seconds"), "seed": seed,
              **({"sampling": pipe.sampling} if hasattr(pipe, "sampling") else {})}
    atomic_write_json(run.path / "metrics.json", result)
    return result
