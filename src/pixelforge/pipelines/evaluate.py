"""Measuring generators: FID, KID, IS and precision/recall of a run's samples against real
images, through a judge network (a shipped domain classifier by default, InceptionV3 or
any classifier run on request).

Which real images: the validation split for every choice made while training
(:func:`fid_evaluator`, behind ``--eval-every`` and ``--best``), the test split for the
numbers that are reported (:func:`evaluate_generator`'s default; folders, which have no
test split, report on their validation images). Every result records its ``split``.
"""

from __future__ import annotations

import os

import torch

from .. import dryrun
from ..data import load_dataset, report_split
from ..errors import PixelforgeError
from ..zoo.catalog import judge_for, list_pretrained
from .classifier import load_classifier, load_shipped_classifier
from .common import check_unseen


def resolve_extractor(spec: str | None, data_spec: str, device: str = "auto"):
    """``None``/"auto": the shipped judge for the dataset; "inception": InceptionV3 (FID
    weights); a shipped model name; or the path of a classifier run."""
    if spec in (None, "", "auto"):
        return load_shipped_classifier(judge_for(data_spec), device=device)
    if spec == "inception":
        from ..metrics import load_inception

        return load_inception()
    if spec in list_pretrained("classifier"):
        return load_shipped_classifier(spec, device=device)
    if os.path.isdir(spec):
        return load_classifier(spec, device=device)
    raise PixelforgeError(f"unknown extractor {spec!r}: use auto, inception, a shipped model "
                          f"({', '.join(list_pretrained('classifier'))}) or a classifier run directory")


def real_images(data: dict, n: int, split: str | None = None) -> torch.Tensor:
    """Up to ``n`` real images of ``split`` at the run's size/channels; default: the split reported
    numbers come from (test; val for folders)."""
    return load_dataset(data["spec"], size=data["size"], channels=data["channels"],
                        split=split or report_split(data["spec"]), limit=n).images


def evaluate_generator(pipe, data: dict, n: int = 10000, extractor=None, metrics=None, seed: int = 0,
                       progress: bool = True, real: torch.Tensor | None = None, split: str | None = None) -> dict:
    """Metrics of ``n`` samples of ``pipe`` (anything with ``sample(n, seed)``) against the real
    images of ``split`` (default: test; val for folders), or ``real`` taken from it; ``metrics``
    default: all of :data:`pixelforge.metrics.METRICS`. The result records the ``split``."""
    # Imported here: the metrics load torchmetrics, seconds that every pipeline import would pay.
    from ..metrics import METRICS, calculate_metrics

    if n < 10:
        raise PixelforgeError(f"evaluation needs at least 10 samples, not {n}")
    n = dryrun.cap(n, "samples")
    ext = extractor if extractor is not None and not isinstance(extractor, str) else \
        resolve_extractor(extractor, data["spec"])
    split = split or report_split(data["spec"])
    real = real_images(data, n, split) if real is None else real
    fake = pipe.sample(n, seed=seed)
    result = calculate_metrics(real, fake, ext, metrics=metrics or METRICS, kid_subset_size=min(1000, n, len(real)),
                               progress=progress)
    return {**result, "split": split}


def check_sampling_options(run_dir, family, sampling: dict) -> None:
    """Sampling options (steps, guidance, eta and solver of diffusion runs, the latent scale of GAN
    runs) belong to families whose loader takes them; ``family`` is a :class:`~pixelforge.family.Family`."""
    if foreign := [k for k in sampling if not family.loader_takes(k)]:
        raise PixelforgeError(f"sampling option(s) {', '.join(foreign)} do not "
                              f"apply to {run_dir}, a {family.name} run")


def fid_evaluator(data: dict, n: int, extractor: str | None, pipeline_of):
    """For ``--eval-every``: a ``task -> {"fid", "kid", "split"}`` callable measuring on the
    validation split (never the test split: it picks the best checkpoint); ``pipeline_of(task)``
    wraps the task's current (EMA) model in a pipeline with ``sample(n, seed)``."""
    # Fail before training, not at the first evaluation.
    check_unseen(data, "val", "--eval-every")
    real = real_images(data, n, "val")
    judge = resolve_extractor(extractor, data["spec"])

    def evaluate(task) -> dict:
        out = evaluate_generator(pipeline_of(task), data, n, judge, metrics=("fid", "kid"), progress=False, real=real,
                                 split="val")
        return {"fid": out["fid"], "kid": out["kid_mean"], "split": "val"}

    return evaluate
