"""Generate: sample a grid from any generator run (GAN, diffusion, and every family
``pixelforge eval`` accepts), or animate a walk through a GAN's latent space."""

from __future__ import annotations

import inspect
import math

from ...defaults import FromAPI
from ...families import generator_families, interpolating_families
from ...schedulers import SAMPLERS
from ..forms import Action, Field, Result, Tab, module_exists

MAX_SAMPLES = 256
SAMPLES = 16  # the studio's grid: smaller than the API's 64, so it answers at once
LOAD_DIFFUSION = "pixelforge.pipelines.diffusion:load_diffusion"
SAMPLE = "pixelforge.pipelines.gan:GANPipeline.sample"
WALK = "pixelforge.pipelines.gan:GANPipeline.interpolate"  # a latent walk (Family.interpolates)


def _labels(values: dict):
    return values.get("label") or None


def sample(studio, v: dict) -> Result:
    pipe = studio.load(v["model"], generator_families())
    options = inspect.signature(pipe.sample).parameters
    extra = {k: v[k] for k in ("steps", "guidance", "latent_scale") if k in options and v.get(k) is not None}
    sampler = v.get("sampler") if "solver" in options else None
    how = SAMPLERS[sampler] if sampler else {}
    images = pipe.sample(v["n"], seed=v["seed"], labels=_labels(v), **extra, **how)
    if sampler:
        extra["sampler"] = sampler
    nrow = min(v["n"], 10) if pipe.num_classes and not _labels(v) else max(1, math.ceil(math.sqrt(v["n"])))
    name = studio.save(images, nrow=nrow)
    return Result(images=[(f"{v['n']} samples, seed {v['seed']}", name)],
                  metrics={"size": f"{pipe.image_size} px", **{k: extra[k] for k in extra}})


def _walkers() -> list[str]:
    return interpolating_families("latent")


def interpolate(studio, v: dict) -> Result:
    pipe = studio.load(v["model"], _walkers())
    path = studio.new_output(".gif")
    pipe.interpolate(path, rows=v["rows"], frames=v["frames"], seed=v["seed"], labels=_labels(v))
    return Result(images=[(f"latent walk: {v['rows']} images, {v['frames']} frames", path.name)])


MODEL = Field("model", "run", "Model", families=generator_families,
              help="a run below the runs folder or a shipped model")
LABEL = Field("label", "class", "Class", required=False, help="empty: every class in turn")

TAB = Tab(
    "generate", "Generate", "Sample images from a trained generator; walk its latent space.",
    available=module_exists("pixelforge.pipelines.gan"),
    actions=[
        Action("sample", "Generate", [
            MODEL,
            Field("n", "int", "Count", SAMPLES, 1, MAX_SAMPLES),
            Field("seed", "int", "Seed", FromAPI(SAMPLE, "seed"), 0, 2**31 - 1),
            LABEL,
            Field("steps", "int", "Steps", FromAPI(LOAD_DIFFUSION, "steps"), 1, 1000, only_for=["diffusion"],
                  help="sampler steps"),
            Field("sampler", "select", "Sampler", FromAPI(LOAD_DIFFUSION, "solver"), options=FromAPI(
                  "pixelforge.schedulers:SAMPLERS"), only_for=["diffusion"],
                  help="ddim: deterministic; ddpm: fresh noise each step; dpm++: second order, best at few steps"),
            Field("guidance", "float", "Guidance", FromAPI(LOAD_DIFFUSION, "guidance"), 0, 20, 0.5,
                  only_for=["diffusion"],
                  help="classifier-free guidance scale (conditional runs)"),
            Field("latent_scale", "float", "Latent spread", None, 0.1, 3, 0.05, required=False, only_for=["gan"],
                  placeholder="the run's default",
                  help="latents drawn from N(0, s² I): below 1 likelier, more alike images; above 1 more varied ones"),
        ], sample),
        Action("interpolate", "Interpolate (GIF)", [
            Field("model", "run", "Model", families=_walkers, help="a GAN run"),
            Field("rows", "int", "Images", FromAPI(WALK, "rows"), 1, 16),
            Field("frames", "int", "Frames", FromAPI(WALK, "frames"), 2, 120),
            Field("seed", "int", "Seed", FromAPI(WALK, "seed"), 0, 2**31 - 1),
            LABEL,
        ], interpolate),
    ])
