"""Model families, one file each; importing this package registers them all."""

from . import gan  # noqa: F401
