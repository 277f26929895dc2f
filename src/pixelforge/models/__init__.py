"""Model families, one file each; importing this package registers them all."""

from . import classifier, diffusion, gan  # noqa: F401
