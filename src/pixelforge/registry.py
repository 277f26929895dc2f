"""The model registry: every registered model by name (see :mod:`pixelforge.models.registration`).

Importing this module imports every model file, so the lookups know them all.
"""

from . import models  # noqa: F401  (runs every model file's @register_model)
from .models.registration import (
    ModelEntry, create_model, get_entry, list_models, make_config, register_model, stored_config
)

__all__ = ["ModelEntry", "create_model", "get_entry", "list_models", "make_config", "register_model",
           "stored_config"]
