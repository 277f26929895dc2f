"""The Python API; the CLI is a thin shell over these functions.

    import pixelforge
    pipe = pixelforge.train_gan("fashion-mnist", run="runs/fm", minutes=5)
    pipe = pixelforge.load("runs/fm")           # any run: the right pipeline for its family
    pipe = pixelforge.load("zoo:photos-sr-x4-v1")  # any shipped model
    images = pipe.sample(64, seed=0)            # (64, C, H, W) floats in [0, 1]
    pixelforge.save_grid(images, "grid.png")

Every family's ``train_*``, ``load_*`` and pipeline names are read from the family registry
(:mod:`pixelforge.families`), so this module lists none of them.
"""

from __future__ import annotations

import os

from .errors import PixelforgeError
from .families import get_family, public_names, run_family
from .zoo.catalog import ZOO_PREFIX, card, shipped_name



def load(run_dir: str | os.PathLike, device: str = "auto", **kwargs):
    """Rebuild a trained model from its run directory alone (config.json + safetensors), or load
    the shipped model ``"zoo:NAME"``."""
    if isinstance(run_dir, str) and run_dir.startswith(ZOO_PREFIX):
        return load_shipped(run_dir, device=device, **kwargs)
    return run_family(run_dir).load(run_dir, device=device, **kwargs)


def shipped_family(name: str) -> str:
    """The family of the shipped model ``name`` (its card names the model, the registry its family)."""
    from .registry import get_entry

    return get_entry(card(shipped_name(name))["model"]).family


def load_shipped(name: str, device: str = "auto", **kwargs):
    """A shipped model (``pixelforge/zoo``; ``zoo:NAME`` or NAME) in its family's pipeline."""
    family = get_family(shipped_family(name))
    if family.load_shipped is None:
        raise PixelforgeError(f"shipped {family.name} models cannot be loaded by this version")
    return family.load_shipped(shipped_name(name), device=device, **kwargs)


def __getattr__(name: str):
    if name == "__all__":
        return ["load", "load_shipped", "shipped_family", *public_names()]
    if not name.startswith("__"):
        names = public_names()
        if name in names:
            return names[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
