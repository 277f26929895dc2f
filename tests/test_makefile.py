"""The README's main command, ``make demo``, stays runnable: every ``pixelforge`` line of the
Makefile's demo recipe runs in the fast mode (``PIXELFORGE_DRY_RUN=1``), in order, in a fresh
folder, and leaves the files the recipe's closing message promises."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from pixelforge.cli import main

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def recipe(target: str) -> list[str]:
    """The command lines of ``target``'s recipe, with the Makefile's variables substituted."""
    text = MAKEFILE.read_text()
    defaults = dict(re.findall(r"^(\w+)\s*[:?]?=\s*(.+?)\s*$", text, flags=re.M))
    lines = text.split(f"\n{target}:", 1)[1].split("\n")[1:]
    commands = []
    for line in lines:
        if not line.startswith("\t"):
            break
        commands.append(re.sub(r"\$\((\w+)\)", lambda m: defaults.get(m.group(1), m.group(0)), line.strip()))
    return commands


def test_demo_recipe_runs(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELFORGE_DRY_RUN", "1")
    monkeypatch.chdir(tmp_path)
    commands = recipe("demo")
    runs = [shlex.split(c)[1:] for c in commands if c.startswith(".venv/bin/pixelforge ")]
    assert len(runs) >= 3, commands
    for argv in runs:
        assert main(argv) in (0, None), argv
    promised = [c for c in commands if c.startswith("@echo")]
    for path in re.findall(r"(runs/[\w/.-]+\.(?:png|gif))", " ".join(promised)):
        assert (tmp_path / path).is_file(), f"make demo promises {path}"
    assert (tmp_path / "runs/demo-unconditional/samples/grid.png").is_file()
    config = json.loads((tmp_path / "runs/demo-unconditional/config.json").read_text())
    assert config["data"]["classes"] == [] and config["model"]["config"]["clusters"] > 0, config  # k-means clusters, no labels


@pytest.mark.parametrize("target", ["demo", "test"])
def test_readme_targets_exist(target):
    assert recipe(target), f"the Makefile has no {target} recipe"
