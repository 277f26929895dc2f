"""pixelforge: a workbench for deep-learning image generation.

Attributes are imported lazily so that ``pixelforge --help`` does not pay for torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "GANPipeline": "api", "load": "api", "train_gan": "api",
    "ClassifierPipeline": "api", "train_classifier": "api",
    "DiffusionPipeline": "api", "train_diffusion": "api",
    "AutoencoderPipeline": "api", "train_autoencoder": "api", "load_autoencoder": "api",
    "SRPipeline": "api", "train_sr": "api", "load_sr": "api",
    "stylize": "api", "synthesize_texture": "api",
    "TranslationPipeline": "api", "train_pix2pix": "api", "train_cyclegan": "api", "load_translation": "api",
    "list_datasets": "data", "load_dataset": "data",
    "PixelforgeError": "errors",
    "make_grid": "images", "save_grid": "images",
    "create_model": "registry", "list_models": "registry", "register_model": "registry",
    "Runtime": "runtime",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pixelforge' has no attribute {name!r}")
