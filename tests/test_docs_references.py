"""Docs point at things that exist: every relative link (and its #anchor) in README.md,
CHANGELOG.md and docs/*.md resolves, and every function or class a page names beside a link to a
source file (``[`models/gan.py`](../src/pixelforge/models/gan.py): `gradient_penalty`, `EMA.update``)
is defined in that file. So a renamed function or a moved page fails here, not in a reader's hands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
HTML_LINK = re.compile(r"""(?:src|href)="([^"]+)\"""")
CODE_LINK = re.compile(r"\[`[^`]+`\]\(([^)\s]+\.py)\):([^|\[]*)")
NAME = re.compile(r"`([A-Za-z_][\w.]*)`")

pytestmark = pytest.mark.docs


def _prose(path: Path) -> str:
    """The page without its fenced code blocks (links inside them are code, not links)."""
    out, fenced = [], False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return "\n".join(out)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in _prose(path).splitlines() if re.match(r"#{1,6} ", line)}


def _targets(path: Path) -> list[str]:
    text = _prose(path)
    return [t for t in MD_LINK.findall(text) + HTML_LINK.findall(text)
            if not re.match(r"[a-z]+:", t)]  # http:, https:, mailto:


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_relative_links_resolve(page):
    broken = []
    for target in _targets(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def _without_parentheses(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    return text


def _defined(source: str, name: str) -> bool:
    *owner, leaf = name.split(".")
    if owner and not re.search(rf"^class {re.escape(owner[-1])}\b", source, re.M):
        return False
    return bool(re.search(rf"^\s*(?:async\s+)?(?:def|class) {re.escape(leaf)}\b", source, re.M)
                or (not owner and re.search(rf"^{re.escape(leaf)}\s*[:=]", source, re.M)))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_named_functions_exist_in_the_linked_file(page):
    missing, named = [], 0
    for target, rest in CODE_LINK.findall(_prose(page)):
        source_file = (page.parent / target).resolve()
        assert source_file.exists(), f"{page.name}: {target} does not exist"
        source = source_file.read_text()
        for name in NAME.findall(_without_parentheses(rest)):
            named += 1
            if not _defined(source, name):
                missing.append(f"{name} (in {target})")
    assert not missing, f"{page.name} names what its linked file does not define: " + ", ".join(missing)


def test_the_learning_path_pages_name_their_code():
    for name in ("classifier", "autoencoder", "gan", "gan_troubleshooting", "evaluation", "diffusion",
                 "style_transfer", "translation", "super_resolution", "compression"):
        page = ROOT / "docs" / f"{name}.md"
        assert CODE_LINK.search(_prose(page)), f"{page.name} links no function to its equations"
        assert "## References" in page.read_text(), f"{page.name} has no references"
        assert f"({name}.md)" in (ROOT / "docs" / "index.md").read_text(), f"index.md does not list {page.name}"
