"""Model families, one file each; importing this package registers them all."""

from . import autoencoder, classifier, codec, diffusion, gan, sr, style, translation  # noqa: F401
