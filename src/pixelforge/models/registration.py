"""``@register_model("name", family=..., config=...)`` on a builder, and the lookups.

A builder takes keyword arguments that form the model's config dataclass; the run directory
stores that name and config so a checkpoint rebuilds its model without the command line.
Model files import this module; everyone else uses :mod:`pixelforge.registry`, which first
imports every model file so that the lookups see them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import PixelforgeError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    config_cls: type
    builder: Callable[..., Any]
    description: str


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, config: type, description: str = ""):
    """Decorator registering ``builder(cfg: config) -> model`` under ``name``."""

    def wrap(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelEntry(name, family, config, builder, description or (builder.__doc__ or "").strip())
        return builder

    return wrap


def get_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise PixelforgeError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}") from None


def list_models(family: str | None = None) -> list[str]:
    return sorted(n for n, e in _MODELS.items() if family is None or e.family == family)


def make_config(name: str, **overrides):
    """The model's config dataclass with ``overrides`` applied; unknown keys are an error."""
    entry = get_entry(name)
    fields = entry.config_cls.__dataclass_fields__
    unknown = set(overrides) - set(fields)
    if unknown:
        raise PixelforgeError(f"model {name!r} has no option(s) {', '.join(sorted(unknown))}")
    return entry.config_cls(**overrides)


def stored_config(config_cls: type, stored: dict):
    """A config dataclass (a model's, a training task's) saved with the entries ``stored`` (a run's
    config.json, a shipped card). An option added since is absent there and takes the value those runs
    were made with, from the class's ``ABSENT_IN_OLDER`` ({field: value}), not today's default."""
    return config_cls(**{**getattr(config_cls, "ABSENT_IN_OLDER", {}), **stored})


def create_model(name: str, **config):
    entry = get_entry(name)
    return entry.builder(make_config(name, **config))
