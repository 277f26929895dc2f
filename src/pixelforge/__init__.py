"""pixelforge: a workbench for deep-learning image generation.

Attributes are imported lazily so that ``pixelforge --help`` does not pay for torch. Besides
the names below, every registered model family adds its own (``train_gan``, ``load_gan``,
``GANPipeline``, ...: see :mod:`pixelforge.families`).
"""

import pkgutil
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load": "api", "load_shipped": "api", "evaluate_run": "evaluation",
    "list_datasets": "data", "load_dataset": "data", "write_examples": "data",
    "PixelforgeError": "errors",
    "make_grid": "images", "save_grid": "images",
    "create_model": "registry", "list_models": "registry", "register_model": "registry",
    "Family": "families", "TrainCommand": "families", "register_family": "families",
    "Runtime": "runtime",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    if name == "__all__":
        return [*_EXPORTS, *import_module(".families", __name__).public_names(), "__version__"]
    # "from pixelforge import dryrun" asks here before it imports the submodule: not a family's name.
    if not name.startswith("__") and name not in {m.name for m in pkgutil.iter_modules(__path__)}:
        names = import_module(".families", __name__).public_names()
        if name in names:
            return names[name]
    raise AttributeError(f"module 'pixelforge' has no attribute {name!r}")
