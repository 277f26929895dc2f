"""Where the front ends find a default: in the Python API they serve, where it is written once.

The command line and the studio offer settings of the API (a preset, a weight, a size). They
do not write its defaults and choices again: :func:`default_in` reads a function's keyword
default from its signature or a config dataclass field's default, and :class:`FromAPI` names
such a default (or a constant) by import path, so that a front end can mention it without
importing the module, and torch, before a command is parsed, its help shown or a form drawn.
:func:`default_text` writes a default as help texts say it: "(default X)".
"""

from __future__ import annotations

import dataclasses
import inspect
from importlib import import_module
from typing import Any, Callable


def default_in(target: Callable | type, name: str) -> Any:
    """The default of ``name``: a field of the config dataclass ``target``, or a keyword argument of
    the function (or class) ``target``; None where it has none."""
    if dataclasses.is_dataclass(target) and name in {f.name for f in dataclasses.fields(target)}:
        f = next(f for f in dataclasses.fields(target) if f.name == name)
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return None if f.default is dataclasses.MISSING else f.default
    parameter = inspect.signature(target).parameters.get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def default_text(default: Any) -> str | None:
    """A default as help texts show it ("4", "0.001", "1,2,2"); None when there is nothing to show."""
    if default is None or default == "" or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return "on" if default else None
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


class FromAPI:
    """A value of the Python API named by import path, looked up on first use and then kept.

    ``FromAPI("pixelforge.pipelines.style:stylize", "steps")``: the default of ``stylize``'s
    ``steps`` (or of a config dataclass's field, see :func:`default_in`);
    ``FromAPI("pixelforge.pipelines.overfit_codec:EFFORTS")``: the constant itself; the path may
    go on through attributes (``MODULE:Class.attribute``). ``then`` derives a value from it
    (e.g. ``len``). Iterating and ``in`` see the value (a choice list); ``str`` shows it as a
    default (``%(default)s`` in an argparse help text).
    """

    def __init__(self, path: str, name: str | None = None, then: Callable[[Any], Any] | None = None):
        self.path, self.name, self.then = path, name, then
        self._value: Any = _UNSET

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            module, _, attributes = self.path.partition(":")
            value = import_module(module)
            for attribute in attributes.split("."):
                value = getattr(value, attribute)
            if self.name is not None:
                value = default_in(value, self.name)
            self._value = value if self.then is None else self.then(value)
        return self._value

    def __iter__(self):
        return iter(self.value)

    def __contains__(self, item) -> bool:
        return item in self.value

    def __str__(self) -> str:
        return default_text(self.value) or ""

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if spec else str(self)

    def __repr__(self) -> str:
        return f"FromAPI({self.path!r}{'' if self.name is None else ', ' + repr(self.name)})"


_UNSET = object()


def resolve(value: Any) -> Any:
    """``value``, or the value a :class:`FromAPI` names."""
    return value.value if isinstance(value, FromAPI) else value
