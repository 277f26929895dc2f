"""Docs stay true: every ``pixelforge`` command shown in the shell blocks of README.md and
docs/*.md (new pages are picked up by the glob) must parse with the real CLI, and every shell
command and every ``python`` block must *run*: page by page, in the order shown, in a fresh
folder per page, in the fast mode (``PIXELFORGE_DRY_RUN=1``: two training steps, a few hundred
images, tiny evaluations; see ``pixelforge.dryrun``). A renamed option or function, a wrong
argument, a command that lost its output, or a page that uses a run it never trained fails here.

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

A page's ``python`` blocks run, in turn with its commands, in one Python process per page (a
later block may use names an earlier one defined, as a reader's session would), started in
the page's folder with the fast mode on; an image file a block names as a string and the
folder lacks is provided as for commands. So a block must be complete: it imports what it
uses and defines its inputs.

A block that cannot run here (a download, several machines) is skipped by writing, on the
line before its opening fence::

    <!-- docs-test: skip (the reason) -->

Skipped blocks are still parsed, and reported as pytest skips with their reason; keep them rare.
"""

from __future__ import annotations

import ast
import atexit
import hashlib
import json
import os
import re
import select
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import pixelforge
from pixelforge.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
PYTHON_LANGS = {"python", "py"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
OUTPUT_OPTIONS = {"-o", "--output", "--compare", "--output-dir"}
MAX_SKIPPED_BLOCKS = 5
PYTHON_BLOCK_TIMEOUT = 300  # seconds; a fast-mode block takes a few

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
    code: str | None = None  # a python block's source (then ``commands`` is empty)


@dataclass
class PythonBlock:
    """A ``python`` block to run: its source and the page line of its first code line."""

    page: str
    line: int
    code: str


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
        if lang in SHELL_LANGS | PYTHON_LANGS:
            before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            skip = SKIP.search(before)
            reason = skip["reason"].strip() if skip else None
            if lang in SHELL_LANGS:
                body = [(k + 1, lines[k]) for k in range(start + 1, j)]
                blocks.append(_block(path.name, start + 1, body, reason))
            else:
                indent = len(m["indent"])
                code = "\n".join(line[indent:] for line in lines[start + 1:j]) + "\n"
                blocks.append(Block(path.name, start + 1, [], [], reason, code))
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
PYTHON_BLOCKS = [b for blocks in PAGES.values() for b in blocks if b.code is not None]
SKIPPED = [b for blocks in PAGES.values() for b in blocks if b.skip]


# -- 1. every command parses (skipped blocks included) ------------------------------------

def test_the_docs_show_commands():
    assert len(COMMANDS) >= 25
    assert len(PYTHON_BLOCKS) >= 8


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{b.page}:{b.line}") for b in PYTHON_BLOCKS])
def test_documented_python_compiles(block):
    try:
        compile(block.code, f"{block.page}:{block.line}", "exec")
    except SyntaxError as e:
        pytest.fail(f"{block.page}:{block.line + (e.lineno or 0)}: {e.msg}", pytrace=False)


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
                    "```python\nimport pixelforge\npixelforge.load('x')\n```\n"
                    "<!-- docs-test: skip (needs a GPU here) -->\n  ```py\n  x = 1\n  ```\n")
    first, second, third, fourth = parse_page(page)
    assert third.code == "import pixelforge\npixelforge.load('x')\n" and third.line == 12 and not third.skip
    assert fourth.code == "x = 1\n" and fourth.skip == "needs a GPU here"
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


def _image_literals(code: str) -> list[str]:
    """The image file names a python block writes as string literals (``"shirt.png"``)."""
    return [node.value for node in ast.walk(ast.parse(code))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.lower().endswith(IMAGE_SUFFIXES) and "\n" not in node.value]


# The page's Python session: reads one JSON message per line ({"code", "filename", "line"}),
# runs the code in one namespace, answers {"ok", "error"} on the original stdout; what the
# blocks print goes to stderr.
_SESSION = r"""
import json, os, sys, traceback
replies = os.fdopen(os.dup(1), "w")
# Warm up before the page is known (while the test runs the previous page's commands): the imports
# and torch's set-up of its first optimizer take seconds.
import torch, pixelforge
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
page = json.loads(sys.stdin.readline())  # the page's folder, environment and log
os.chdir(page["folder"])
os.environ.clear()
os.environ.update(page["env"])
log = os.open(page["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.dup2(log, 2)
os.dup2(log, 1)
sys.stdout = sys.stderr
namespace = {"__name__": "__main__"}
for message in sys.stdin:
    block = json.loads(message)
    try:
        exec(compile("\n" * block["line"] + block["code"], block["filename"], "exec"), namespace)
        reply = {"ok": True}
    except BaseException as e:  # the page's frames only, not this loop's
        reply = {"ok": False, "error": "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))}
    replies.write(json.dumps(reply) + "\n")
    replies.flush()
"""
_spare_worker: subprocess.Popen | None = None


def _session_env() -> dict[str, str]:
    """The test's environment in the fast mode, with this checkout (not an installed copy) on the path."""
    env = dict(os.environ, PIXELFORGE_DRY_RUN="1", PYTHONUNBUFFERED="1")
    src = str(Path(pixelforge.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _session_worker() -> subprocess.Popen:
    """A warmed-up Python process for a page's blocks; another is started to warm up for the next page."""
    global _spare_worker

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _SESSION], cwd=ROOT, env=_session_env(), text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    worker = _spare_worker if _spare_worker is not None and _spare_worker.poll() is None else start()
    _spare_worker = start()
    return worker


@atexit.register
def _stop_spare_worker() -> None:
    if _spare_worker is not None:
        _spare_worker.kill()
        _spare_worker.wait()


class PythonSession:
    """One Python process per page (see :func:`_session_worker`), moved into the page's folder
    with the test's environment when the page's first block runs, fed block by block."""

    def __init__(self, folder: Path):
        self.folder, self.proc = folder, None
        self.log = folder / ".python-session.log"

    def run(self, block: PythonBlock) -> str | None:
        """Run a block; None when it ran, else the error (traceback and output tail)."""
        if self.proc is None:
            self.proc = _session_worker()
            self.log.touch()
            page = {"folder": str(self.folder), "env": _session_env(), "log": str(self.log)}
            self.proc.stdin.write(json.dumps(page) + "\n")
        start = len(self.log.read_text())
        message = {"code": block.code, "filename": str(ROOT / block.page if block.page == "README.md"
                                                        else ROOT / "docs" / block.page), "line": block.line}
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], PYTHON_BLOCK_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        output = self.log.read_text()[start:]
        if not line:
            self.close()
            why = f"took over {PYTHON_BLOCK_TIMEOUT} s" if not ready else "the Python process died"
            return f"{why}\n{_tail(output, 12)}"
        reply = json.loads(line)
        return None if reply["ok"] else f"{_tail(reply['error'], 12)}\n-- output --\n{_tail(output, 6)}"

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _tail(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _run_params():
    for page, blocks in PAGES.items():
        runnable = []
        for b in blocks:
            if b.skip:
                continue
            runnable += b.commands if b.code is None else [PythonBlock(page, b.line, b.code)]
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
    session = PythonSession(tmp_path)
    timings = []
    try:
        for step in what:
            start = time.monotonic()
            if isinstance(step, PythonBlock):
                for name in _image_literals(step.code):
                    if not Path(name).exists():
                        _provide_inputs([name], images)
                error = session.run(step)
                timings.append((time.monotonic() - start, step.line, "python block"))
                if error:
                    pytest.fail(f"{step.page}:{step.line}: the python block failed (fast mode, in {tmp_path}):\n"
                                f"{error}", pytrace=False)
                continue
            command = step
            _provide_inputs(command.argv, images)
            with monkeypatch.context() as m:
                for key, value in command.env.items():
                    if key != "PIXELFORGE_DATA":  # the test's data, not the reader's
                        m.setenv(key, value)
                try:
                    code = main(list(command.argv))
                except SystemExit as e:  # argparse
                    code = e.code
            out, err = capsys.readouterr()
            timings.append((time.monotonic() - start, command.line, command.text))
            if code != 0:
                tail = "\n".join((out + err).strip().splitlines()[-8:])
                pytest.fail(f"{command.page}:{command.line}: `{command.text}` exited with {code} "
                            f"(fast mode, in {tmp_path}):\n{tail}", pytrace=False)
    finally:
        session.close()
    with capsys.disabled():
        if os.environ.get("DOCS_TEST_TIMINGS"):
            for seconds, line, text in timings:
                print(f"  {seconds:5.1f} s  {page}:{line}  {text[:90]}")
        slowest = max(timings, key=lambda t: t[0])
        print(f"\n{page}: {len(timings)} commands and blocks in {sum(t for t, *_ in timings):.1f} s "
              f"(slowest {slowest[0]:.1f} s: line {slowest[1]})")


def test_python_session_keeps_names_between_blocks_and_points_at_the_page_line(tmp_path):
    session = PythonSession(tmp_path)
    try:
        assert session.run(PythonBlock("page.md", 3, "import os\nanswer = 6 * 7\nprint('hello')\n")) is None
        assert session.run(PythonBlock("page.md", 9, "with open('out.txt', 'w') as f:\n    f.write(str(answer))\n")) is None
        error = session.run(PythonBlock("page.md", 20, "x = 1\nundefined_name\n"))
    finally:
        session.close()
    assert (tmp_path / "out.txt").read_text() == "42"  # names kept; run in the page's folder
    assert "line 22" in error and "NameError: name 'undefined_name' is not defined" in error
    assert "hello" in (tmp_path / ".python-session.log").read_text()


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
