"""Golden tests of the diagnostics: each ``tests/golden/NNN_name.rp`` against its ``.expected``.

The expected file has one line per diagnostic, in the order check_sources reports them:
``LINE:COL CODE severity message``, followed by `` | help: SUGGESTION`` when there is one.
An empty expected file means the case has no problem at all.

To rewrite every expected file from the current output (then review the diff by eye — the
expected files are the specification):

    RISKENGINE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from riskengine.checks import CODES, check_sources
from riskengine.diagnostics import Diagnostic

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.rp"))
UPDATE = os.environ.get("RISKENGINE_UPDATE_GOLDEN") == "1"

#: Codes no golden case can show, with the reason.
NOT_IN_GOLDEN = {
    "RE005": "a file that is not UTF-8 cannot be given as text (tests/test_checks.py reads one)",
    "RE006": "a missing path (tests/test_checks.py)",
    "RE007": "said by the `check` command of a file without a profile (tests/test_cli_ux.py)",
    "RE312": "the grammar has no negative numbers there (tests/test_checks.py builds a model)",
    "RE313": "as RE312",
    "RE314": "as RE312",
    "RE315": "as RE312",
}


def line_of(d: Diagnostic) -> str:
    text = f"{d.span.line}:{d.span.column} {d.code} {d.severity} {d.message}"
    if d.suggestion:
        text += f" | help: {d.suggestion}"
    return text


def render_case(path: Path) -> str:
    result = check_sources({path.name: path.read_text(encoding="utf-8")})
    return "".join(line_of(d) + "\n" for d in result.diagnostics)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path) -> None:
    expected_path = case.with_suffix(".expected")
    actual = render_case(case)
    if UPDATE:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), f"{expected_path.name} is missing: run with UPDATE"
    assert actual == expected_path.read_text(encoding="utf-8")


def test_case_names_are_numbered_and_distinct() -> None:
    numbers = [c.name.split("_", 1)[0] for c in CASES]
    assert len(CASES) >= 35
    assert all(re.fullmatch(r"\d{3}", n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    stray = {p.stem for p in GOLDEN.glob("*.expected")} - {c.stem for c in CASES}
    assert not stray


def test_every_code_has_a_golden_case() -> None:
    shown = set()
    for case in CASES:
        expected = case.with_suffix(".expected")
        if expected.exists():
            shown |= set(re.findall(r"^\d+:\d+ (RE\d{3}) ", expected.read_text(), re.M))
    missing = sorted(set(CODES) - shown - set(NOT_IN_GOLDEN))
    assert missing == []
