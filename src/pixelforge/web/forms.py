"""The studio's forms, as data: a :class:`Tab` has :class:`Action` s, an action is a list of
:class:`Field` s plus a handler ``handler(studio, values) -> Result`` that calls the Python API.
The page renders every form from this description. A field's default, limits and options that
the API defines are not written again: they are :class:`~pixelforge.defaults.FromAPI`, looked
up when a form is first drawn (so a tab whose capability is missing still imports).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable

from ..defaults import FromAPI, resolve


@dataclass
class Field:
    """One form input. ``type``: int, float, text, select, bool, run (a run of ``families``;
    ``default`` is the model chosen first, e.g. a shipped one), class (a class of the run
    chosen in the form's run field; ``placeholder`` names the empty choice), image (an
    upload), mask (drawn over the form's image field). ``default``, ``min``, ``max``,
    ``options`` and ``help`` may be :class:`FromAPI`: see :meth:`resolved`."""

    name: str
    type: str
    label: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    options: list[str] | FromAPI = field(default_factory=list)
    families: list[str] | Callable[[], list[str]] = field(default_factory=list)  # a callable: asked at each render
    required: bool = True
    only_for: list[str] = field(default_factory=list)  # shown only when the chosen run is of these families
    placeholder: str = ""  # class fields: the text of the empty choice; numbers: what an empty field means
    help: str | FromAPI = ""

    def spec(self) -> dict:
        values = {**self.resolved().__dict__, "families": self.family_names()}
        return {k: v for k, v in values.items() if v not in (None, [], "")}

    def resolved(self) -> "Field":
        """This field with the values it takes from the API looked up."""
        return dataclasses.replace(self, default=resolve(self.default), min=resolve(self.min), max=resolve(self.max),
                                   options=list(resolve(self.options)), help=resolve(self.help))

    def family_names(self) -> list[str]:
        return list(self.families() if callable(self.families) else self.families)


@dataclass
class Action:
    """``background``: the handler runs as a polled job outside the inference lock and is
    called as ``handler(studio, values, report)``, ``report(fraction, note)`` its progress."""

    name: str
    label: str
    fields: list[Field]
    handler: Callable[..., "Result"]
    background: bool = False


@dataclass
class Result:
    """What an action shows: images (title, file in the output folder), numbers and a note."""

    images: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    layout: str = "grid"  # "grid": one after another; "compare": side by side (before/after)


@dataclass
class Tab:
    name: str
    title: str
    description: str
    available: Callable[[], bool]
    actions: list[Action] = field(default_factory=list)
    unavailable: str = "not available in this version of pixelforge"
    panel: str = "form"  # "form": rendered from the actions; "runs": the run browser

    def spec(self) -> dict:
        ok, message = self.status()
        return {"name": self.name, "title": self.title, "description": self.description, "available": ok,
                "panel": self.panel, "message": message,
                "actions": [{"name": a.name, "label": a.label, "background": a.background,
                             "fields": [f.spec() for f in a.fields]}
                            for a in self.actions] if ok else []}

    def status(self) -> tuple[bool, str]:
        if not self.available():
            return False, self.unavailable
        if self.panel == "form" and not self.actions:  # the capability landed, its form not yet
            return False, f"{self.title}: the capability is installed but this studio has no form for it yet."
        return True, ""

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)


def module_exists(name: str) -> Callable[[], bool]:
    """An ``available()`` check: is the module ``name`` importable here?"""

    def check() -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    return check
