"""Shipped weights: the catalogue (:mod:`pixelforge.zoo.catalog`: cards, networks, export) and
``load_pretrained``, which wraps a shipped network in its family's pipeline. Every shipped model
also loads as ``pixelforge.load("zoo:NAME")``.
"""

from __future__ import annotations

from .catalog import (JUDGES, ZOO_DIR, ZOO_PREFIX, card, export, export_run, judge_for, judges_for,
                      list_pretrained, load_network, shipped_name)

__all__ = ["JUDGES", "ZOO_DIR", "ZOO_PREFIX", "card", "export", "export_run", "judge_for", "judges_for",
           "list_pretrained", "load_network", "load_pretrained", "shipped_name"]


def load_pretrained(name: str, device: str = "auto"):
    """A shipped classifier as a :class:`~pixelforge.pipelines.classifier.ClassifierPipeline`."""
    from ..pipelines.classifier import load_shipped_classifier

    return load_shipped_classifier(name, device=device)
