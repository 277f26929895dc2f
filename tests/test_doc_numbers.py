"""Numbers the docs copy from a benchmark's results file are checked against that file, so a
re-run benchmark whose docs were not updated fails here instead of misleading a reader.

A number taken from ``benchmarks/results/NAME.json`` is followed, with nothing in between, by
an HTML comment naming the file and the value's place in it (GitHub does not show comments,
in prose or in table cells)::

    x4 **+2.52 dB**<!-- super_resolution.json:x4.mean.gain_db -->
    single view 93.57%<!-- classifier_accuracy.json:results[1].test_accuracy -->
    page 2 ms<!-- studio_latency.json:seconds["page (GET /)"]*1000 -->

- The place: ``.key`` or ``["key"]`` into an object (quote a key holding anything besides
  letters, digits, ``_`` and ``-``: ``["gaussian_0.3"]``, ``["pixelforge default"]``) and
  ``[i]`` into a list. An optional ``*factor`` at the end converts units (``*1000``: seconds
  to milliseconds; ``*100``: a fraction to percentage points).
- The number is the one just before the comment, with an optional short unit and emphasis
  between (``**2.21x**``, ``+8.61 dB``, ``2,013 img/s``, ``-6.6 dB``). It must equal the
  value rounded to the decimals it shows (a half may round either way). A percentage also
  matches a fraction: ``93.87%`` reads 0.9387 or 93.87.
- A marker naming a missing file or key, a value that is not a number, or a comment that
  mentions a ``.json`` file but is not a well-formed marker fails, with the page and line.

Pages: README.md and docs/*.md (CHANGELOG.md is history and keeps the numbers of its day).
Every row of README.md's Benchmarks table carries at least one marker. A number that no
results file holds (a hand-entered probe, a figure derived from two values) stays unmarked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

COMMENT = re.compile(r"<!--(?P<body>.*?)-->")
CODE_SPAN = re.compile(r"`[^`]+`")
MARKER = re.compile(r"\s*(?P<file>[\w.-]+\.json):(?P<path>\S.*?)(?:\*(?P<factor>-?\d+(?:\.\d+)?))?\s*")
STEP = re.compile(r'\.(?P<key>[\w-]+)|\["(?P<quoted>[^"]+)"\]|\[(?P<index>\d+)\]')
# The number at the end of the text before a marker: sign, digits (commas between thousands),
# decimals, an exponent (2e-6), an optional unit of up to eight characters, and closing emphasis.
NUMBER = re.compile(r"(?<![\w.,])(?P<sign>[-+\u2212]?)(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
                    r"(?P<exp>e-?\d+)?(?P<unit>\s?(?:%|[A-Za-z][A-Za-z/]{0,7}))?[*_`]*$")

pytestmark = pytest.mark.docs


@dataclass
class Marker:
    page: str
    line: int
    before: str  # the line's text up to the comment
    body: str  # the comment's text
    start: int = -1  # where the comment starts in its line


def _markers(path: Path) -> list[Marker]:
    """Every comment that names a .json file, outside code blocks and `code spans`."""
    found, fenced = [], False
    page = path.name if path.parent == ROOT else f"docs/{path.name}"
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        code = [span.span() for span in CODE_SPAN.finditer(line)]
        # The text before a marker, less earlier comments: two markers may follow one number.
        found += [Marker(page, number, COMMENT.sub("", line[:m.start()]), m["body"], m.start())
                  for m in COMMENT.finditer(line)
                  if ".json" in m["body"] and not any(a <= m.start() < b for a, b in code)]
    return found


def resolve(data, path: str):
    """The value at ``path`` (``a.b[0]["c d"]``) in parsed JSON; LookupError says which step failed."""
    pos, value, walked = 0, data, ""
    path = path if path.startswith("[") else "." + path
    while pos < len(path):
        step = STEP.match(path, pos)
        if step is None:
            raise LookupError(f"cannot read the path from {path[pos:]!r} on")
        key = step["key"] or step["quoted"] or step["index"]
        if isinstance(value, list) and key.isdigit() and not step["quoted"] and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise LookupError(f"no {step.group()} in {walked.lstrip('.') or 'the file'}")
        walked += step.group()
        pos = step.end()
    return value


def check(marker: Marker, results: Path = RESULTS) -> str | None:
    """None when the number before the marker agrees with its results file, else why not."""
    where = f"{marker.page}:{marker.line}: <!--{marker.body}-->"
    form = MARKER.fullmatch(marker.body)
    if form is None:
        return f"{where}: not a marker; write <!-- NAME.json:path.to[0].value -->"
    file = results / form["file"]
    if not file.is_file():
        return f"{where}: no file benchmarks/results/{form['file']}"
    try:
        value = resolve(json.loads(file.read_text()), form["path"])
    except LookupError as e:
        return f"{where}: {form['file']}: {e}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{where}: the value there is {value!r}, not a number"
    shown = NUMBER.search(marker.before)
    if shown is None:
        return f"{where}: no number right before the marker"
    number = Decimal(shown["sign"].replace("\u2212", "-") + shown["digits"].replace(",", "")
                     + (shown["frac"] or "") + (shown["exp"] or ""))
    factors = [Decimal(form["factor"])] if form["factor"] else [Decimal(1)]
    if not form["factor"] and (shown["unit"] or "").strip() == "%":
        factors.append(Decimal(100))
    half = Decimal(5).scaleb(number.as_tuple().exponent - 1)  # half a unit of the last digit shown
    expected = [Decimal(repr(float(value))) * f for f in factors]
    if any(abs(number - e) <= half for e in expected):
        return None
    return (f"{where}: the page says {shown.group().strip('*_` ')}, the file says {value!r}"
            + (f" (x{form['factor']})" if form["factor"] else ""))


def refresh(path: Path, results: Path = RESULTS) -> int:
    """Rewrite the stale marked numbers of a page from their results files, in the form the page
    shows them (decimals, thousands commas, sign, percent); returns how many changed. Numbers in
    code, in exponent form or under a second stacked marker are left alone, and the words around
    a number (a verdict, "mean of 3 seeds") are the writer's to update."""
    lines, changed = path.read_text().split("\n"), 0
    for marker in sorted(_markers(path), key=lambda m: (m.line, -m.start)):
        line = lines[marker.line - 1]
        form, shown = MARKER.fullmatch(marker.body), NUMBER.search(line[:marker.start])
        if form is None or shown is None or shown["exp"] or check(marker, results) is None:
            continue
        try:
            value = resolve(json.loads((results / form["file"]).read_text()), form["path"])
        except (LookupError, OSError):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        old = float(shown["digits"].replace(",", "") + (shown["frac"] or ""))
        percent = (shown["unit"] or "").strip() == "%" and abs(value) <= 1.5 and old > 1.5
        factor = float(form["factor"] or (100 if percent else 1))
        decimals = len(shown["frac"]) - 1 if shown["frac"] else 0
        text = f"{abs(value * factor):{',' if ',' in shown['digits'] else ''}.{decimals}f}"
        start, sign = shown.start(), "-" if value < 0 else ("+" if shown["sign"] == "+" else "")
        if not NUMBER.search(marker.before)["sign"]:
            start = shown.start("digits")  # "4<!-- a -->-5": the dash of a range stays
        lines[marker.line - 1] = line[:start] + sign + text + line[shown.end("frac") if shown["frac"] else
                                                                     shown.end("digits"):]
        changed += 1
    path.write_text("\n".join(lines))
    return changed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_marked_numbers_match_their_results_file(page):
    wrong = [why for m in _markers(page) if (why := check(m))]
    assert not wrong, "stale or broken numbers:\n" + "\n".join(wrong)


def _benchmark_rows() -> list[tuple[int, str]]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("## Benchmarks")
    rows = []
    for number, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("## "):
            break
        if line.startswith("|") and not re.match(r"\|\s*(benchmark\s*\||-)", line):
            rows.append((number, line))
    return rows


def test_every_readme_benchmark_row_is_marked():
    rows = _benchmark_rows()
    assert len(rows) >= 10, "README.md's Benchmarks table not found"
    unmarked = [f"README.md:{n}: {line[:70]}" for n, line in rows
                if not any(".json:" in m["body"] for m in COMMENT.finditer(line))]
    assert not unmarked, "Benchmarks rows without a marked number:\n" + "\n".join(unmarked)


@pytest.mark.parametrize("before,body,ok", [
    ("= **2.21x**", "r.json:results[0].ratio", True),
    ("= **2.3x**", "r.json:results[0].ratio", False),
    ("28 px: 2,013", "r.json:results[0].img_s", True),
    ("28 px: 2013", "r.json:results[0].img_s", True),
    ("28 px: 2,012 img/s", "r.json:results[0].img_s", False),
    ("single view 93.87%", "r.json:acc", True),  # a fraction
    ("single view 93.9%", "r.json:acc", True),
    ("single view 93.8%", "r.json:acc", False),
    ("KID 0.94", "r.json:acc", True),
    ("gain 8.61%", "r.json:gain_pct", True),  # already in percent
    ("vs WebP -6.6 dB", "r.json:bd", True),
    ("differs by 2e-6", "r.json:tiny", True),
    ("differs by 3e-6", "r.json:tiny", False),
    ("vs WebP \u22126.57 dB", "r.json:bd", True),
    ("vs WebP 6.6 dB", "r.json:bd", False),
    ("(**+8.61 dB**", 'r.json:x["gaussian_0.3"].gain', True),
    ("page 2 ms", 'r.json:seconds["page (GET /)"]*1000', True),
    ("page 2 ms", 'r.json:seconds["page (GET /)"]', False),
    ("-2.07 points", "r.json:rows[1].gain*100", True),
    ("about 23-2", "r.json:results[0].ratio", True),  # a range, not a negative number
    ("0.245", "r.json:half", True),  # a half rounds either way
    ("0.25", "r.json:half", True),
    ("x4 model", "r.json:acc", False),  # no number right before
    ("1", "r.json:results[0].ratio", False),
    ("0.14", "r.json:missing", False),
    ("0.14", "r.json:results[9].ratio", False),
    ("0.14", "r.json:name", False),  # not a number
    ("0.14", "other.json:acc", False),
    ("0.14", " r.json results[0].ratio ", False),  # malformed
])
def test_checker(tmp_path, before, body, ok):
    (tmp_path / "r.json").write_text(json.dumps({
        "results": [{"ratio": 2.21, "img_s": 2012.9}], "acc": 0.9387, "gain_pct": 8.61, "bd": -6.567,
        "x": {"gaussian_0.3": {"gain": 8.61}}, "seconds": {"page (GET /)": 0.0017},
        "rows": [{}, {"gain": -0.020666}], "half": 0.245, "name": "gan", "tiny": 2e-6}))
    why = check(Marker("page.md", 1, before, body), results=tmp_path)
    assert (why is None) == ok, why


def test_refresh_rewrites_stale_numbers_in_the_form_shown(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"fid": 0.2066, "steps": 17198.0, "acc": 0.9391, "gain": -1.234,
                                                 "lo": 4.19, "hi": 5.01, "kid": -0.00176}))
    page = tmp_path / "page.md"
    page.write_text("FID **0.20**<!-- r.json:fid --> after 18,999<!-- r.json:steps --> steps, 93.87%<!-- r.json:acc -->\n"
                    "gain +0.50 dB<!-- r.json:gain -->, 4<!-- r.json:lo -->-5 min<!-- r.json:hi -->, kept 0.21<!-- r.json:fid -->\n"
                    "| 0.0027<!-- r.json:kid --> | `0.5<!-- r.json:fid -->` 3e-6<!-- r.json:kid -->\n"
                    "```\n0.5<!-- r.json:fid -->\n```\n")
    assert refresh(page, results=tmp_path) == 5
    assert page.read_text() == ("FID **0.21**<!-- r.json:fid --> after 17,198<!-- r.json:steps --> steps, "
                                "93.91%<!-- r.json:acc -->\ngain -1.23 dB<!-- r.json:gain -->, 4<!-- r.json:lo -->-5 "
                                "min<!-- r.json:hi -->, kept 0.21<!-- r.json:fid -->\n| -0.0018<!-- r.json:kid --> | "
                                "`0.5<!-- r.json:fid -->` 3e-6<!-- r.json:kid -->\n```\n0.5<!-- r.json:fid -->\n```\n")
    assert [m.line for m in _markers(page) if check(m, results=tmp_path)] == [3]  # the exponent form, left alone


def test_markers_skip_code_and_read_stacked_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("write `1.5<!-- r.json:a -->` like this\n```\n2<!-- r.json:b -->\n```\n"
                    "KID 0.0005<!-- r.json:c --><!-- r.json:d --> each\n")
    found = _markers(page)
    assert [(m.line, m.body.strip(), m.before) for m in found] == [
        (5, "r.json:c", "KID 0.0005"), (5, "r.json:d", "KID 0.0005")]


if __name__ == "__main__":
    # python tests/test_doc_numbers.py: refresh every page's stale marked numbers after a benchmark run.
    for page in PAGES:
        if n := refresh(page):
            print(f"{page.relative_to(ROOT)}: {n} number(s) refreshed")
