"""The Python API; the CLI is a thin shell over these functions.

    import pixelforge
    pipe = pixelforge.train_gan("fashion-mnist", run="runs/fm", minutes=5)
    pipe = pixelforge.load("runs/fm")           # any run: the right pipeline for its family
    images = pipe.sample(64, seed=0)            # (64, C, H, W) floats in [0, 1]
    pixelforge.save_grid(images, "grid.png")
"""

from __future__ import annotations

import os

from .errors import RunError
from .pipelines.autoencoder import AutoencoderPipeline, load_autoencoder, train_autoencoder
from .pipelines.classifier import ClassifierPipeline, load_classifier, train_classifier
from .pipelines.diffusion import DiffusionPipeline, load_diffusion, train_diffusion
from .pipelines.gan import GANPipeline, load_gan, train_gan
from .pipelines.sr import SRPipeline, load_sr, train_sr
from .pipelines.codec import CodecPipeline, load_codec_run, open_codec, train_codec
from .pipelines.style import stylize, synthesize_texture
from .pipelines.stylizer import OnnxStylizer, StylizerPipeline, export_onnx, load_stylizer, train_adain, train_stylizer
from .pipelines.translation import TranslationPipeline, load_translation, train_cyclegan, train_pix2pix
from .runs import Run

__all__ = ["AutoencoderPipeline", "ClassifierPipeline", "DiffusionPipeline", "GANPipeline", "SRPipeline", "load",
           "load_autoencoder", "load_classifier", "load_diffusion", "load_gan", "load_sr", "train_autoencoder",
           "train_classifier", "train_diffusion", "train_gan", "train_sr", "stylize", "synthesize_texture",
           "CodecPipeline", "open_codec", "train_codec",
           "StylizerPipeline", "OnnxStylizer", "export_onnx", "load_stylizer", "train_adain", "train_stylizer",
           "TranslationPipeline", "load_translation", "train_cyclegan", "train_pix2pix"]

_LOADERS = {"gan": load_gan, "classifier": load_classifier, "diffusion": load_diffusion,
            "autoencoder": load_autoencoder, "sr": load_sr, "codec": load_codec_run, "style": load_stylizer,
            "translation": load_translation}


def load(run_dir: str | os.PathLike, device: str = "auto", **kwargs):
    """Rebuild a trained model from its run directory alone (config.json + safetensors)."""
    family = Run.open(run_dir).config.get("family")
    if family not in _LOADERS:
        raise RunError(f"{run_dir}: cannot load a {family!r} run (known: {', '.join(_LOADERS)})")
    return _LOADERS[family](run_dir, device=device, **kwargs)
