"""Model families, one file each; importing this package registers them all."""

from . import classifier, gan, sr  # noqa: F401
