"""The one registry of model families (see :class:`pixelforge.family.Family`).

Every module of :mod:`pixelforge.pipelines` that declares ``FAMILY`` is a built-in family;
:func:`register_family` adds more (a plug-in, or a test's dummy family). The CLI, the
Python API (``pixelforge.load``, the ``train_*``/``load_*`` names), evaluation and the studio
all read this registry, so a family is added in its own files only.
"""

from __future__ import annotations

import os
import pkgutil
from importlib import import_module

from . import pipelines
from .errors import PixelforgeError, RunError
from .family import Family, Option, TrainCommand
from .runs import Run

__all__ = ["Family", "Option", "TrainCommand", "all_families", "exporting_families", "generator_families",
           "get_family", "interpolating_families", "public_names", "register_family", "run_family", "train_command",
           "unregister_family"]

_FAMILIES: dict[str, Family] = {}
_discovered = False


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module_info in pkgutil.iter_modules(pipelines.__path__):
        declared = getattr(import_module(f"{pipelines.__name__}.{module_info.name}"), "FAMILY", None)
        if isinstance(declared, Family):
            _FAMILIES.setdefault(declared.name, declared)


def register_family(family: Family) -> Family:
    """Add ``family``; its train commands and exported names must not clash with the others'."""
    _discover()
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    taken_commands = {c.name for f in _FAMILIES.values() for c in f.commands}
    taken_names = set(public_names())
    for command in family.commands:
        if command.name in taken_commands:
            raise ValueError(f"train command {command.name!r} already belongs to another family")
    clashes = taken_names & set(family.public_names())
    if clashes:
        raise ValueError(f"family {family.name!r} exports names that exist: {', '.join(sorted(clashes))}")
    _FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> None:
    _FAMILIES.pop(name, None)


def all_families() -> list[Family]:
    _discover()
    return list(_FAMILIES.values())


def get_family(name: str | None) -> Family:
    _discover()
    if name not in _FAMILIES:
        raise PixelforgeError(f"unknown model family {name!r}; known: {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def generator_families() -> list[str]:
    """The families whose pipelines have ``sample(n, seed)``."""
    return [f.name for f in all_families() if f.generates]


def interpolating_families(kind: str | None = None) -> list[str]:
    """The families whose runs ``pixelforge interpolate`` walks (of one ``kind``: "latent", "codes")."""
    return [f.name for f in all_families() if f.interpolates and kind in (None, f.interpolates)]


def exporting_families() -> list[str]:
    """The families whose runs ``pixelforge export`` writes as ONNX."""
    return [f.name for f in all_families() if f.export_onnx is not None]


def train_command(name: str) -> tuple[Family, TrainCommand]:
    for family in all_families():
        for command in family.commands:
            if command.name == name:
                return family, command
    raise PixelforgeError(f"no train command {name!r}")


def public_names() -> dict[str, object]:
    """Every family's public names (train, load, pipeline classes, ...) -> the object."""
    names: dict[str, object] = {}
    for family in all_families():
        names.update(family.public_names())
    return names


def run_family(run_dir: str | os.PathLike) -> Family:
    """The family of the run in ``run_dir`` (as its config.json says)."""
    name = Run.open(run_dir).config.get("family")
    _discover()
    if name not in _FAMILIES:
        raise RunError(f"{run_dir}: cannot load a {name!r} run (known: {', '.join(_FAMILIES)})")
    return _FAMILIES[name]
