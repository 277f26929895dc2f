"""Docs stay true: every `pixelforge ...` command shown in README.md and docs/*.md must parse
with the real CLI, so a renamed command or option fails here."""

import re
import shlex
from pathlib import Path

import pytest

from pixelforge.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands():
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.S):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split(" #")[0].strip()
                if "pixelforge.cli " in line:
                    line = "pixelforge " + line.split("pixelforge.cli ", 1)[1]
                if line.startswith("pixelforge "):
                    yield pytest.param(shlex.split(line)[1:], id=f"{doc.name}: {line[:70]}")


COMMANDS = list(shown_commands())


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("argv", COMMANDS)
def test_documented_command_parses(argv):
    build_parser().parse_args(argv)  # argparse exits (SystemExit) on an unknown command or option
