"""Model families, one file each; importing this package registers them all."""

from . import autoencoder, classifier, diffusion, gan, sr, translation  # noqa: F401
