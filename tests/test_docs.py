"""Docs stay true: every ``pixelforge`` command shown in the shell blocks of README.md and
docs/*.md (new pages are picked up by the glob) must parse with the real CLI, and must *run*:
page by page, in the order shown, in a fresh folder per page, in the fast mode
(``PIXELFORGE_DRY_RUN=1``: two training steps, a few hundred images, tiny evaluations; see
``pixelforge.dryrun``). A renamed option, a command that lost its output, or a page that uses
a run it never trained fails here.

The folder a page runs in holds:

- ``photos/`` and ``styles/``: the sample photos and paintings in ``$PIXELFORGE_DATA``
  (docs write ``folder:photos``, ``photos/garden.png``, ``styles/udnie.png``);
- any other input image a command names and the page has not made by then (``shirt.png``,
  ``a.jpg``, a folder ``images/``): a Fashion-MNIST test image (eight for a folder); a name
  containing "mask" gets a 28x28 mask with a square in the middle. So pages may name their
  inputs as readers would, and still run.

Commands run in-process (``pixelforge.cli.main``); ``torchrun ... -m pixelforge.cli ARGS``
runs ARGS in one process; ``VAR=value`` prefixes are set for that command. Lines that are
not pixelforge commands (``make``, ``pip``, ``python benchmarks/...``) are listed, not run.

A block that cannot run here (a download, several machines) is skipped by writing, on the
line before its opening fence::

    <!-- docs-test: skip (the reason) -->

Skipped blocks are still parsed, and reported as pytest skips with their reason; keep them rare.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pixelforge.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
OUTPUT_OPTIONS = {"-o", "--output", "--compare", "--output-dir"}
MAX_SKIPPED_BLOCKS = 5

pytestmark = pytest.mark.docs  # `pytest -m docs` runs this file alone, `-m "not docs"` leaves it out


@dataclass
class Command:
    page: str
    line: int  # 1-based line in the page where the command starts
    text: str
    argv: list[str]  # the arguments after ``pixelforge``
    env: dict[str, str] = field(default_factory=dict)
    via: str = "pixelforge"  # or "torchrun" (run in one process)


@dataclass
class Block:
    page: str
    line: int
    commands: list[Command]
    others: list[str]  # lines that are not pixelforge commands
    skip: str | None = None


def _lines_of_block(body: list[tuple[int, str]]):
    """Join ``\\`` continuations; yield (line number, text) per shell line."""
    pending, start = "", None
    for number, text in body:
        if start is None:
            start = number
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        yield start, pending + text
        pending, start = "", None
    if pending:
        yield start, pending


def parse_page(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m["lang"]
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            j += 1
        if lang in SHELL_LANGS:
            before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            skip = SKIP.search(before)
            body = [(k + 1, lines[k]) for k in range(start + 1, j)]
            blocks.append(_block(path.name, start + 1, body, skip["reason"].strip() if skip else None))
        i = j + 1
    return blocks


def _block(page: str, line: int, body, skip) -> Block:
    commands, others = [], []
    for number, text in _lines_of_block(body):
        text = text.strip()
        if text.startswith("$ "):
            text = text[2:]
        tokens = shlex.split(text, comments=True)
        if not tokens:
            continue
        env = {}
        while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
            key, _, value = tokens.pop(0).partition("=")
            env[key] = value
        if tokens and tokens[0] == "pixelforge":
            commands.append(Command(page, number, text, tokens[1:], env))
        elif tokens and "pixelforge.cli" in tokens and tokens[0] in ("torchrun", "python", "python3"):
            via = "torchrun" if tokens[0] == "torchrun" else "pixelforge"
            commands.append(Command(page, number, text, tokens[tokens.index("pixelforge.cli") + 1:], env, via))
        elif tokens:
            others.append(text)
    return Block(page, line, commands, others, skip)


PAGES = {doc.name: parse_page(doc) for doc in DOCS}
COMMANDS = [c for blocks in PAGES.values() for b in blocks for c in b.commands]
SKIPPED = [b for blocks in PAGES.values() for b in blocks if b.skip]


# -- 1. every command parses (skipped blocks included) ------------------------------------

def test_the_docs_show_commands():
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("command", [pytest.param(c, id=f"{c.page}:{c.line}") for c in COMMANDS])
def test_documented_command_parses(command):
    try:
        build_parser().parse_args(command.argv)
    except SystemExit:
        pytest.fail(f"{command.page}:{command.line}: `{command.text}` does not parse")


def test_block_parser_reads_continuations_env_torchrun_and_skips(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- docs-test: skip (needs two machines) -->\n```sh\n"
                    "torchrun --nnodes=2 -m pixelforge.cli train gan --data digits \\\n    --run-dir r\n```\n"
                    "```sh\nOMP_NUM_THREADS=1 pixelforge sample runs/x -n 4   # a comment\nmake demo\n```\n"
                    "```python\npixelforge.load('x')\n```\n")
    first, second = parse_page(page)
    assert first.skip == "needs two machines" and first.line == 4
    assert first.commands[0].argv == ["train", "gan", "--data", "digits", "--run-dir", "r"]
    assert first.commands[0].via == "torchrun" and first.commands[0].line == 5
    assert second.skip is None and second.others == ["make demo"]
    assert second.commands[0].argv == ["sample", "runs/x", "-n", "4"]
    assert second.commands[0].env == {"OMP_NUM_THREADS": "1"}


# -- 2. every command runs, page by page, in the fast mode -------------------------------

def _fashion_images(shared: Path):
    from pixelforge.data import load_dataset

    return load_dataset("fashion-mnist", split="test", limit=64).images


def _write_image(path: Path, array) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _provide_inputs(argv: list[str], images) -> list[str]:
    """Create the input images a command names that do not exist yet; returns their names."""
    import numpy as np

    made = []
    for k, token in enumerate(argv):
        if k and argv[k - 1] in OUTPUT_OPTIONS or token.startswith("-"):
            continue
        for part in token.split(","):
            path = Path(part)
            if path.exists():
                continue
            seed = int(hashlib.sha256(part.encode()).hexdigest(), 16)
            if part.lower().endswith(IMAGE_SUFFIXES):
                if "mask" in path.name.lower():
                    mask = np.zeros((28, 28), np.uint8)
                    mask[7:21, 7:21] = 255
                    _write_image(path, mask)
                else:
                    _write_image(path, images[seed % len(images), 0].numpy())
                made.append(part)
            elif part.endswith("/") and k and not argv[k - 1].startswith("-"):
                for n in range(8):
                    _write_image(path / f"{n}.png", images[(seed + n) % len(images), 0].numpy())
                made.append(part)
    return made


def _run_params():
    for page, blocks in PAGES.items():
        runnable = [c for b in blocks if not b.skip for c in b.commands]
        if runnable:
            yield pytest.param(page, runnable, id=page)
        for b in blocks:
            if b.skip:
                yield pytest.param(page, b, id=f"{page}:{b.line}-skipped")


@pytest.mark.parametrize("page,what", list(_run_params()))
def test_documented_commands_run(page, what, shared_data, tmp_path, monkeypatch, capsys):
    if isinstance(what, Block):
        pytest.skip(f"{page}:{what.line}: docs-test: skip ({what.skip})")
    monkeypatch.setenv("PIXELFORGE_DRY_RUN", "1")
    monkeypatch.chdir(tmp_path)
    for name in ("photos", "styles"):
        if (shared_data / name).is_dir():
            (tmp_path / name).symlink_to(shared_data / name)
    images = _fashion_images(shared_data)
    timings = []
    for command in what:
        _provide_inputs(command.argv, images)
        start = time.monotonic()
        with monkeypatch.context() as m:
            for key, value in command.env.items():
                if key != "PIXELFORGE_DATA":  # the test's data, not the reader's
                    m.setenv(key, value)
            try:
                code = main(list(command.argv))
            except SystemExit as e:  # argparse
                code = e.code
        out, err = capsys.readouterr()
        timings.append((time.monotonic() - start, command))
        if code != 0:
            tail = "\n".join((out + err).strip().splitlines()[-8:])
            pytest.fail(f"{command.page}:{command.line}: `{command.text}` exited with {code} "
                        f"(fast mode, in {tmp_path}):\n{tail}", pytrace=False)
    with capsys.disabled():
        if os.environ.get("DOCS_TEST_TIMINGS"):
            for seconds, c in timings:
                print(f"  {seconds:5.1f} s  {c.page}:{c.line}  {c.text[:90]}")
        slowest = max(timings, key=lambda t: t[0])
        print(f"\n{page}: {len(timings)} commands in {sum(t for t, _ in timings):.1f} s "
              f"(slowest {slowest[0]:.1f} s: line {slowest[1].line})")


def test_skips_are_rare_and_say_why():
    for block in SKIPPED:
        assert len(block.skip) >= 8, f"{block.page}:{block.line}: say why the block is skipped"
    assert len(SKIPPED) <= MAX_SKIPPED_BLOCKS, [f"{b.page}:{b.line} ({b.skip})" for b in SKIPPED]


def test_fast_mode_is_off_unless_asked(monkeypatch):
    from pixelforge import dryrun

    monkeypatch.delenv(dryrun.VARIABLE, raising=False)
    assert not dryrun.active() and dryrun.cap(1000, "steps") == 1000
    for off in ("0", "false", "No", ""):
        monkeypatch.setenv(dryrun.VARIABLE, off)
        assert not dryrun.active()
    monkeypatch.setenv(dryrun.VARIABLE, "1")
    assert dryrun.active() and dryrun.cap(1000, "samples") == dryrun.LIMITS["samples"]
    assert dryrun.cap(None, "images") == dryrun.LIMITS["images"] and dryrun.cap(1, "images") == 1
    monkeypatch.delenv(dryrun.VARIABLE)
    with dryrun.enabled():
        assert os.environ[dryrun.VARIABLE] == "1"
    assert dryrun.VARIABLE not in os.environ
