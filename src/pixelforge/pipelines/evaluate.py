"""Measuring generators: FID, KID, IS and precision/recall of a run's samples against real
images, through a judge network (a shipped domain classifier by default, InceptionV3 or
any classifier run on request).
"""

from __future__ import annotations

import os

import torch

from .. import dryrun
from ..data import load_dataset
from ..errors import PixelforgeError
from ..metrics import METRICS, calculate_metrics


# Families whose pipelines have ``sample(n, seed)``; each new generative family adds itself.
# (Autoencoder runs sample only when they are VAEs; a plain AE's pipeline says so.)
GENERATOR_FAMILIES = ("gan", "diffusion", "autoencoder")


def resolve_extractor(spec: str | None, data_spec: str, device: str = "auto"):
    """``None``/"auto": the shipped judge for the dataset; "inception": InceptionV3 (FID
    weights); a shipped model name; or the path of a classifier run."""
    from .. import zoo

    if spec in (None, "", "auto"):
        return zoo.load_pretrained(zoo.judge_for(data_spec), device=device)
    if spec == "inception":
        from ..metrics import load_inception

        return load_inception()
    if spec in zoo.list_pretrained("classifier"):
        return zoo.load_pretrained(spec, device=device)
    if os.path.isdir(spec):
        from .classifier import load_classifier

        return load_classifier(spec, device=device)
    raise PixelforgeError(f"unknown extractor {spec!r}: use auto, inception, a shipped model "
                          f"({', '.join(zoo.list_pretrained('classifier'))}) or a classifier run directory")


def real_images(data: dict, n: int) -> torch.Tensor:
    """Up to ``n`` real images at the run's size/channels: the test split of named datasets."""
    split = "train" if data["spec"].startswith("folder:") else "test"
    return load_dataset(data["spec"], size=data["size"], channels=data["channels"], split=split, limit=n).images


def evaluate_generator(pipe, data: dict, n: int = 10000, extractor=None, metrics=METRICS, seed: int = 0,
                       progress: bool = True, real: torch.Tensor | None = None) -> dict:
    """Metrics of ``n`` samples of ``pipe`` (anything with ``sample(n, seed)``) against real data."""
    if n < 10:
        raise PixelforgeError(f"evaluation needs at least 10 samples, not {n}")
    n = dryrun.cap(n, "samples")
    ext = extractor if extractor is not None and not isinstance(extractor, str) else \
        resolve_extractor(extractor, data["spec"])
    real = real_images(data, n) if real is None else real
    fake = pipe.sample(n, seed=seed)
    result = calculate_metrics(real, fake, ext, metrics=metrics, kid_subset_size=min(1000, n, len(real)),
                               progress=progress)
    return result


def check_sampling_options(run_dir, family: str | None, sampling: dict) -> None:
    """Sampling options (steps, guidance, eta, solver) belong to diffusion runs only."""
    if sampling and family != "diffusion":
        raise PixelforgeError(f"sampling options ({', '.join(sampling)}) are for diffusion runs; {run_dir} is a "
                              f"{family} run")


def fid_evaluator(data: dict, n: int, extractor: str | None, pipeline_of):
    """For ``--eval-every``: a ``task -> {"fid", "kid"}`` callable; ``pipeline_of(task)`` wraps the
    task's current (EMA) model in a pipeline with ``sample(n, seed)``."""
    judge = resolve_extractor(extractor, data["spec"])  # fail before training, not at the first evaluation
    real = real_images(data, n)

    def evaluate(task) -> dict:
        out = evaluate_generator(pipeline_of(task), data, n, judge, metrics=("fid", "kid"), progress=False, real=real)
        return {"fid": out["fid"], "kid": out["kid_mean"]}

    return evaluate
