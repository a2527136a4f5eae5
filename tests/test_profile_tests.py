"""Profile unit tests (``*.test.toml``): format, runner, coverage and ``riskengine test``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.cli import cli
from riskengine.evaluator import Engine
from riskengine.model import ControlKind
from riskengine.profiletest import (
    Diff,
    RunResult,
    Status,
    TestFileError,
    coverage_points,
    parse_test_text,
    run_tests,
)

ROOT = Path(__file__).parent.parent

SMALL = """\
profile draft "Small" {
    module declaration
    spheres 101
    indicators {
        footwear: item.hs_code starts with ("6403")
        cheap: item.customs_value / item.net_mass < 10
    }
    degree = 50 * footwear + 40 * cheap
    message "Check {item.hs_code} ({degree})"
    controls {
        102 "Documentary check" mandatory from 50
        201 "Physical inspection" mandatory when cheap from 90
    }
}
"""


def _case(name: str, hs: str, value: int | None, extra: str = "") -> str:
    value_line = "" if value is None else f"customs_value = {value}\n"
    return (
        f'[[case]]\nname = "{name}"\nas_of = 2024-04-02\n{extra}\n'
        f'[case.declaration]\nid = "{name}"\n\n[[case.declaration.items]]\n'
        f'hs_code = "{hs}"\n{value_line}net_mass = 100\n\n'
    )


BOOTS = _case("boots at 50 a kg", "6403990000", 5000)
CHEAP = _case("boots at 5 a kg", "6403990000", 500)
TABLES = _case("tables", "9403600000", 5000)


def _tree(tmp_path: Path, *cases: str) -> Path:
    (tmp_path / "small.rp").write_text(SMALL, encoding="utf-8")
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "tests" / "small.test.toml").write_text("".join(cases), encoding="utf-8")
    return tmp_path


def _run(tmp_path: Path, *cases: str) -> RunResult:
    folder = _tree(tmp_path, *cases)
    tf = parse_test_text("".join(cases), str(folder / "tests" / "small.test.toml"))
    return run_tests(Engine.load(folder, allow_drafts=True), [tf])


def run(*args: str | Path) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


# ------------------------------------------------------------------------------ coverage


def test_coverage_counts_true_and_false_per_point(tmp_path: Path) -> None:
    # boots at 50 UAH/kg: footwear true, cheap false, degree 50: 102 applies, 201 does not
    run1 = _run(tmp_path, BOOTS)
    [cov] = run1.coverage
    seen = {p.name: (p.true_seen, p.false_seen) for p in cov.points}
    assert seen == {
        "footwear": (True, False),
        "cheap": (False, True),
        "102": (True, False),
        "201": (False, True),
    }
    assert (cov.covered, cov.total, cov.percent) == (4, 8, 50.0)
    # + boots at 5 UAH/kg: cheap true, degree 90: 201 applies → 6 of 8
    assert _run(tmp_path, BOOTS, CHEAP).percent == 75.0
    # + tables: footwear false, degree 0: 102 does not apply → all 8
    full = _run(tmp_path, BOOTS, CHEAP, TABLES)
    assert (full.covered, full.total, full.percent) == (8, 8, 100.0)
    assert full.passed == 3 and full.failed == 0


def test_a_missing_field_counts_as_false(tmp_path: Path) -> None:
    run1 = _run(tmp_path, _case("no value", "6403990000", None))
    seen = {p.name: (p.true_seen, p.false_seen) for p in run1.coverage[0].points}
    assert seen["cheap"] == (False, True)


def test_regional_fill_controls_are_points_of_their_own() -> None:
    engine = Engine.load(ROOT / "profiles")
    regional = engine.profiles.get("1A/20/2023/00005-01")
    assert regional is not None
    points = coverage_points(regional)
    assert ("control", "202 (fill UA100110, order 412)") in points
    assert ("control", "203 (fill UA500110, order 287)") in points
    assert ("control", "203 (fill UA500110, order 351)") in points
    # the quarterly fills of 2024-2026 give values only: the profile's own controls run there
    assert ("control", "104") in points
    assert ("control", "103") in points


def test_untested_profiles_count_zero(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS)
    (folder / "other.rp").write_text(SMALL.replace('"Small"', '"Other"'), encoding="utf-8")
    tf = parse_test_text(BOOTS, str(folder / "tests" / "small.test.toml"))
    result = run_tests(Engine.load(folder, allow_drafts=True), [tf])
    by_name = {c.name: c for c in result.coverage}
    assert by_name["Other"].cases == 0 and by_name["Other"].percent == 0.0
    assert result.percent == 25.0  # 4 of 16


# ------------------------------------------------------------------------------ expectations


def test_passing_expectations(tmp_path: Path) -> None:
    extra = (
        'fires = true\ndegree = 90\ncontrols = { 102 = "mandatory", 201 = "mandatory when" }\n'
        'message = "Check 6403990000 (90)"\nitems = [1]\nlane = "red"'
    )
    result = _run(tmp_path, _case("cheap", "6403990000", 500, extra))
    [res] = result.results
    assert res.status is Status.PASS, res.diffs


def test_failing_case_shows_expected_and_actual_field_by_field(tmp_path: Path) -> None:
    extra = (
        'fires = true\ndegree = 60\ncontrols = ["102", "201"]\n'
        'message = "Check 6403990000 (60)"\nitems = [1, 2]\nlane = "yellow"'
    )
    [res] = _run(tmp_path, _case("boots", "6403990000", 5000, extra)).results
    assert res.status is Status.FAIL
    # degree 50: only 102 (mandatory) applies, so the lane is yellow as expected
    assert res.diffs == (
        Diff("degree", "60", "50"),
        Diff("controls", "102, 201", "102"),
        Diff("message", "'Check 6403990000 (60)'",
             "'Check 6403990000 (50)' (first difference at character 19)"),
        Diff("items", "[1, 2]", "[1]"),
    )  # fmt: skip


def test_failing_kinds_and_fires(tmp_path: Path) -> None:
    extra = 'fires = false\ncontrols = { 102 = "if necessary" }'
    [res] = _run(tmp_path, _case("boots", "6403990000", 5000, extra)).results
    assert res.diffs == (
        Diff("fires", "false", "true"),
        Diff("controls", "102 (if necessary)", "102 (mandatory)"),
    )


def test_case_errors_are_reported_not_raised(tmp_path: Path) -> None:
    bad_value = (
        '[[case]]\nname = "bad"\nas_of = 2024-04-02\n'
        'declaration = { items = [ { net_mass = "12,5" } ] }\n'
    )
    no_date = '[[case]]\nname = "no date"\ndeclaration = { id = "x" }\n'
    unknown = '[[case]]\nname = "who"\nprofile = "nope"\nas_of = 2024-04-02\ndeclaration = {}\n'
    result = _run(tmp_path, bad_value, no_date, unknown)
    assert [r.status for r in result.results] == [Status.ERROR] * 3
    assert result.results[0].error == (
        'declaration: item 1, item.net_mass: expected a number, got "12,5" '
        "(the decimal separator is a dot)"
    )
    assert result.results[1].error == "no as_of and no declaration date to score on"
    assert result.results[2].error == "no profile 'nope' among the loaded profiles"


def test_history_is_fixed_and_capped(tmp_path: Path) -> None:
    profile = SMALL.replace(
        "    controls {",
        "    history per declaration.id over 30 days {\n"
        "        negative max 20 per case 10 { 0201: 1.0 }\n    }\n    controls {",
    ).replace("40 * cheap", "40 * cheap + negative_history")
    (tmp_path / "small.rp").write_text(profile, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    text = _case("boots", "6403990000", 5000, "history = { negative = 35 }\ndegree = 70")
    tf = parse_test_text(text, str(tmp_path / "tests" / "small.test.toml"))
    [res] = run_tests(Engine.load(tmp_path, allow_drafts=True), [tf]).results
    assert res.status is Status.PASS, res.diffs  # 50 + min(35, 20)


# ------------------------------------------------------------------------------ the format


def test_controls_as_a_table_of_kinds() -> None:
    tf = parse_test_text(
        '[[case]]\nname = "a"\ndeclaration = {}\ncontrols = { 102 = "mandatory", '
        '201 = "mandatory when", 301 = "if necessary" }\n',
        "x.test.toml",
    )
    assert tf.stem == "x"
    assert tf.cases[0].controls == {
        "102": ControlKind.MANDATORY,
        "201": ControlKind.CONDITIONAL,
        "301": ControlKind.IF_NECESSARY,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[case]]\nname = "a"\ndeclaration = { id = "x"\n',
         "f.test.toml: line 3, column 25: bad TOML: Unclosed inline table"),
        ('[[case]]\nname = "a"\ndeclaration = {}\ndegre = 5\n',
         "f.test.toml: case 'a', key 'degre': unknown key; did you mean 'degree'?"),
        ('[[case]]\nname = "a"\n',
         "f.test.toml: case 'a', key 'declaration': required: a table with the declaration "
         "(same shape as JSON)"),
        ('[[case]]\nname = "a"\ndeclaration = {}\ncontrols = { 102 = "always" }\n',
         "f.test.toml: case 'a', key 'controls': code 102: kind 'always': use mandatory, "
         "mandatory when, if necessary"),
        ('[[case]]\nname = "a"\ndeclaration = {}\nas_of = "2024-02-30"\n',
         "f.test.toml: case 'a', key 'as_of': '2024-02-30' is not a date YYYY-MM-DD"),
        ('[[case]]\ndeclaration = {}\n', "f.test.toml: case #1: needs a name (a non-empty string)"),
        ('title = "x"\n', "f.test.toml: unknown top-level key 'title': use [[case]] tables"),
        ("", "f.test.toml: no [[case]] tables"),
        ('[[case]]\nname = "a"\ndeclaration = {}\n[[case]]\nname = "a"\ndeclaration = {}\n',
         "f.test.toml: case 'a': two cases have this name"),
        ('[[case]]\nname = "a"\ndeclaration = {}\nhistory = { negative = -1 }\n',
         "f.test.toml: case 'a', key 'history': negative must be a number ≥ 0"),
        ('[[case]]\nname = "a"\ndeclaration = {}\nitems = [0]\n',
         "f.test.toml: case 'a', key 'items': expected a list of item numbers (1, 2, ...)"),
        ('[[case]]\nname = "a"\ndeclaration = {}\nlane = "blue"\n',
         "f.test.toml: case 'a', key 'lane': expected one of red, yellow, green"),
    ],
)  # fmt: skip
def test_malformed_test_files(text: str, message: str) -> None:
    with pytest.raises(TestFileError) as caught:
        parse_test_text(text, "f.test.toml")
    assert str(caught.value) == message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_gives_a_test_file_error(text: str) -> None:
    try:
        parse_test_text(text, "f.test.toml")
    except TestFileError as exc:
        assert str(exc).startswith("f.test.toml: ")


# ------------------------------------------------------------------------------ the command


def test_command_on_the_sample_profiles_reaches_full_coverage() -> None:
    result = run("test", ROOT / "profiles", "--min-coverage", "100")
    assert result.exit_code == 0, result.output
    assert " 0 failed; coverage 100 %" in result.output
    assert "FAIL" not in result.output and "ERROR" not in result.output


def test_command_min_coverage_fails_the_run(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS, CHEAP)
    result = run("test", folder, "--min-coverage", "80")
    assert result.exit_code == 1
    assert "2 cases passed, 0 failed; coverage 75 % (6/8)" in result.output
    assert "error: coverage 75 % is below --min-coverage 80 %" in result.output
    assert run("test", folder, "--min-coverage", "75").exit_code == 0


def test_command_text_shows_failures_and_coverage_table(tmp_path: Path) -> None:
    folder = _tree(tmp_path, _case("boots", "6403990000", 5000, "degree = 60"))
    result = run("test", folder / "tests" / "small.test.toml")
    assert result.exit_code == 1
    assert "  FAIL  boots [Small]" in result.output
    lines = [line.strip() for line in result.output.splitlines()]
    at = lines.index("degree:")
    assert lines[at + 1 : at + 3] == ["expected: 60", "actual:   50"]
    # a draft is named once in its coverage heading (its key is its name)
    assert "\nSmall: 50 % (1 case)\n" in result.output
    assert "Small Small" not in result.output
    assert "indicator cheap" in result.output


def test_command_json(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS, _case("bad", "6403990000", 5000, "degree = 1"))
    result = run("test", folder, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert "note: 1 draft loaded for development (allow_drafts)" in result.stderr
    assert (data["passed"], data["failed"]) == (1, 1)
    assert data["cases"][1]["diffs"] == [{"field": "degree", "expected": "1", "actual": "50"}]
    assert data["coverage"]["percent"] == 50.0
    assert data["coverage"]["profiles"][0]["points"][0] == {
        "kind": "indicator", "name": "footwear", "true": True, "false": False,
    }  # fmt: skip


def test_command_reports_every_bad_file_without_traceback(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS)
    (folder / "tests" / "a.test.toml").write_text("[[case]\n", encoding="utf-8")
    (folder / "tests" / "b.test.toml").write_text('[[case]]\nname = "x"\n', encoding="utf-8")
    result = run("test", folder)
    assert result.exit_code == 1
    assert f"error: {folder / 'tests' / 'a.test.toml'}: line 1, column 7: bad TOML" in result.output
    assert (
        f"error: {folder / 'tests' / 'b.test.toml'}: case 'x', key 'declaration'" in result.output
    )
    assert "Traceback" not in result.output


def test_command_without_test_files_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "small.rp").write_text(SMALL, encoding="utf-8")
    result = run("test", tmp_path)
    assert result.exit_code == 2
    assert "no *.test.toml files found" in result.output


def test_command_with_broken_profiles_is_one_error(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS)
    (folder / "small.rp").write_text('profile "x" {\n  indicators { a: item.x = 1 }\n}\n')
    result = run("test", folder)
    assert result.exit_code == 1
    assert "have errors" in result.output and "Traceback" not in result.output


def test_command_tested_only_leaves_untested_profiles_out(tmp_path: Path) -> None:
    folder = _tree(tmp_path, BOOTS, CHEAP, TABLES)
    (folder / "other.rp").write_text(SMALL.replace('"Small"', '"Other"'), encoding="utf-8")
    result = run("test", folder)
    assert result.exit_code == 0
    assert "\nOther: no tests, 0 % of 8 points\n" in result.output
    assert "coverage 50 % (8/16)" in result.output
    only = run("test", folder, "--tested-only", "--min-coverage", "100")
    assert only.exit_code == 0, only.output
    assert "coverage 100 % (8/8)" in only.output


def test_a_file_with_several_profiles_needs_a_profile_key(tmp_path: Path) -> None:
    two = SMALL + SMALL.replace('"Small"', '"Second"')
    (tmp_path / "small.rp").write_text(two, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    tf = parse_test_text(BOOTS, str(tmp_path / "tests" / "small.test.toml"))
    [res] = run_tests(Engine.load(tmp_path, allow_drafts=True), [tf]).results
    assert res.status is Status.ERROR
    assert res.error == "small.rp holds several profiles (Small, Second); give the case a 'profile'"
    named = parse_test_text(
        BOOTS.replace("as_of =", 'profile = "Second"\nas_of ='),
        str(tmp_path / "tests" / "small.test.toml"),
    )
    [ok] = run_tests(Engine.load(tmp_path, allow_drafts=True), [named]).results
    assert ok.status is Status.PASS and ok.profile == "Second"
