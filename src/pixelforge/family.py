"""The description of a model family that every front end reads.

A family's pipeline file declares ``FAMILY = Family(...)``: how to train it (one
:class:`TrainCommand` per ``pixelforge train NAME``), how to load its runs and shipped
weights, whether it generates, and the public names it adds to ``pixelforge``.
:mod:`pixelforge.families` finds the declarations; the CLI, the Python API, evaluation,
the studio and the top-level exports read them from there.

Command-line training flags come from the config dataclasses' fields: a field whose
metadata has a ``help`` is a flag ``--FIELD-NAME`` with its default in the help text
(other metadata keys: ``flag``, ``choices``, ``check`` ("positive", "non-negative"),
``metavar``, ``default_text``, ``group``, ``negatable``: --no-FLAG too). Keyword arguments
of the train function itself are offered through :class:`Option`, their defaults taken
from its signature.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable, Mapping

from .defaults import default_in


@dataclass(frozen=True)
class Option:
    """A keyword argument of a train function offered on the command line (not a config field)."""

    name: str
    help: str
    flag: str = ""  # default: --NAME with dashes
    choices: tuple = ()
    group: str = "training"
    check: str = ""  # "positive" or "non-negative", as in field metadata


@dataclass(frozen=True)
class TrainCommand:
    """``pixelforge train NAME``: ``train(data, run=..., **options)`` returns a pipeline.

    ``configs``: the model and task config dataclasses whose fields become flags (minus
    ``skip``); ``fixed``: keyword arguments the command always passes; ``evaluates``: offer
    FID tracking during training (--eval-every, --eval-samples, --extractor);
    ``data_aliases``: more spellings of --data; ``report(pipe)``: lines printed after training.
    """

    name: str
    help: str
    train: Callable[..., Any]
    configs: tuple[type, ...] = ()
    options: tuple[Option, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    evaluates: bool = False
    data_aliases: tuple[str, ...] = ()
    report: Callable[[Any], list[str]] | None = None

    def default_of(self, name: str):
        """The train function's default for keyword argument ``name``."""
        return default_in(self.train, name)


@dataclass(frozen=True)
class Family:
    """One model family. ``name`` is the ``family`` recorded in a run's config.json.

    ``load(run_dir, device=..., **options)`` rebuilds a run's pipeline; ``load_shipped(name,
    device=...)`` a shipped model's (zoo cards name the model, whose registry entry names the
    family); ``generates``: its pipelines have ``sample(n, seed)`` (evaluation, ``sample`` and the
    studio's Generate tab take its runs); ``interpolates``: how ``pixelforge interpolate`` walks
    its runs, "latent" (``pipe.interpolate(path, rows=, frames=, seed=, labels=, fps=)``: a GIF
    through the latent space, also in the studio's Generate tab) or "codes"
    (``pipe.save_interpolation(path, images, rows=, steps=, seed=, labels=, fps=)``: between the
    codes of images, a PNG grid or a GIF); ``export_onnx(run_dir, output)``: writes a run as ONNX
    (``pixelforge export``); ``exports``: more public names of ``pixelforge``.
    """

    name: str
    load: Callable[..., Any]
    commands: tuple[TrainCommand, ...] = ()
    generates: bool = False
    interpolates: str = ""
    export_onnx: Callable[..., Any] | None = None
    load_shipped: Callable[..., Any] | None = None
    exports: tuple[Any, ...] = ()
    description: str = ""

    def public_names(self) -> dict[str, Any]:
        """The names this family adds to ``pixelforge``: its train and load functions and exports."""
        objects = [*(c.train for c in self.commands), self.load, *self.exports]
        if self.load_shipped is not None:
            objects.append(self.load_shipped)
        return {obj.__name__: obj for obj in objects}

    def loader_takes(self, name: str) -> bool:
        parameters = inspect.signature(self.load).parameters
        return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def flag(default: Any = MISSING, *, help: str, default_factory: Any = MISSING, **metadata: Any):
    """A config dataclass field that is also a ``pixelforge train`` flag (see the module docstring)."""
    return field(default=default, default_factory=default_factory, metadata={"help": help, **metadata})
