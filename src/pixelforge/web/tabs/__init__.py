"""The studio's tabs, registered in one table.

A tab is a small module with a ``TAB``: its title, an ``available()`` check (does the
capability exist in this installation?) and its actions. An action is a form (a list of
:class:`Field`) plus a handler ``handler(studio, values) -> Result`` that calls the Python
API. The page renders every form from this description, so adding a tab is one module and
one line in :data:`TABS`; a tab whose capability has not landed stays in the table and the
page says so instead of offering a form that cannot work.
"""

from __future__ import annotations

from ..forms import Action, Field, Result, Tab, module_exists
from . import classify, compress, generate, inpaint, restore, runs, style, upscale

__all__ = ["Action", "Field", "Result", "Tab", "TABS", "get_tab", "module_exists"]


TABS: list[Tab] = [generate.TAB, inpaint.TAB, restore.TAB, upscale.TAB, style.TAB, compress.TAB, classify.TAB,
                   runs.TAB]


def get_tab(name: str) -> Tab | None:
    return next((t for t in TABS if t.name == name), None)
