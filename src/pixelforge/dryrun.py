"""Fast mode: every command does the least real work that still exercises it.

``PIXELFORGE_DRY_RUN=1 pixelforge ...`` (or ``pixelforge train ... --dry-run``) runs any
command end to end with tiny budgets: training stops after :data:`LIMITS` ``["steps"]``
optimisation steps of this invocation (an ``--eval-every`` evaluation included), datasets
are cut to their first few hundred images, a classifier is scored on a hundred or so of them,
evaluations and studies generate a few hundred samples (``metrics.calculate_metrics`` keeps
the first few hundred of each set), diffusion sampling and style-transfer optimisation take
two steps, and style transfer works at 64 pixels. Options are parsed and checked exactly as
in a real run, run folders, checkpoints, samples and reports are written as usual, so a dry
run checks a set-up (or a documented command, see ``tests/test_docs.py``) in seconds; its
numbers mean nothing. ``serve`` builds the studio and returns without listening.

This module is the only place that reads the variable; code asks :func:`active` or caps a
value with :func:`cap`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

VARIABLE = "PIXELFORGE_DRY_RUN"

LIMITS = {
    "steps": 2,  # optimisation steps per training invocation
    "images": 512,  # images loaded per dataset split
    "samples": 128,  # images generated for an evaluation (and real images compared with them)
    "scored": 128,  # images a classifier's accuracy is measured on
    "per_class": 20,  # generated images per class in the CAS and augmentation studies
    "repeats": 1,  # seeds of the augmentation study
    "sampling_steps": 2,  # diffusion sampling steps; style-transfer optimisation steps
    "image_size": 64,  # longest side of a style-transfer result
}


def active() -> bool:
    """True when the fast mode is on: ``PIXELFORGE_DRY_RUN`` set to anything but "", 0, false, no, off."""
    return os.environ.get(VARIABLE, "").strip().lower() not in ("", "0", "false", "no", "off")


def cap(value, what: str):
    """``value``, or the fast mode's limit for ``what`` when the mode is on and the limit is smaller
    (``None``, meaning unlimited, becomes the limit)."""
    if not active():
        return value
    limit = LIMITS[what]
    return limit if value is None else min(value, limit)


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Turn the fast mode on for the duration of a block (``--dry-run``); the variable is restored after."""
    if not on:
        yield
        return
    old = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = old
