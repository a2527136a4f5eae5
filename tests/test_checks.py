"""Tests of the checks stage beyond the golden cases: the API, interval arithmetic, rendering,
paths and directories, rules that need a model built by hand."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.checks import (
    CODES,
    CheckResult,
    Interval,
    ValueType,
    check_models,
    check_paths,
    check_sources,
    degree_range,
    expr_range,
    expr_type,
    last_valid_day,
    load_checked,
)
from riskengine.diagnostics import ProfileError, Severity
from riskengine.syntax import parse

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
CLEAN = GOLDEN / "000_clean_kitchen_sink.rp"
INF = math.inf

DRAFT = """
profile draft "{name}" {{
    indicators {{ {indicators} }}
    degree = {degree}
    controls {{ 102 "Documentary check" mandatory from {threshold} }}
    {extra}
}}
"""


def draft(
    indicators: str = 'a: item.origin == "CN"',
    degree: str = "100 * a",
    threshold: str = "50",
    extra: str = "",
    name: str = "x",
) -> str:
    return DRAFT.format(
        name=name, indicators=indicators, degree=degree, threshold=threshold, extra=extra
    )


def codes(result: CheckResult) -> list[str]:
    return [d.code for d in result.diagnostics]


# ------------------------------------------------------------------------------------ clean input


def test_clean_kitchen_sink_has_no_problem_at_all() -> None:
    result = check_paths(CLEAN)
    assert result.ok
    assert result.diagnostics == ()
    assert [p.key for p in result.profiles] == [
        "2A/08/2012/00042-03",
        "5B/20/2012/00007-01",
        "Candidate: smuggled cigarettes",
    ]
    assert len(result.fills) == 2


def test_sample_profiles_have_no_errors() -> None:
    result = check_paths(ROOT / "profiles")
    assert result.files, "the sample profiles are missing"
    assert result.errors == [], result.render()


def test_syntax_kitchen_sink_checks_clean() -> None:
    result = check_paths(ROOT / "tests" / "data" / "kitchen_sink.rp")
    assert len(result.files) == 1
    assert result.errors == [], result.render()


def test_clean_checks_never_call_difflib(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("difflib called on clean input")

    monkeypatch.setattr(difflib, "get_close_matches", boom)
    assert check_paths([CLEAN, ROOT / "profiles"]).errors == []


# ------------------------------------------------------------------------------------ result API


def test_result_sorts_and_splits_errors_and_warnings() -> None:
    text = draft(
        indicators='a: item.orign == "CN"  unused: item.net_mass > 1',
        extra="spheres 999",
    )
    typed = draft(name="y", degree="if a then item.origin else item.brand")
    result = check_sources({"b.rp": text, "a.rp": typed})
    keys = [(d.span.file, d.span.line, d.span.column) for d in result.diagnostics]
    assert keys == sorted(keys)
    assert {d.code for d in result.errors} == {"RE201", "RE142", "RE227"}
    assert [d.code for d in result.warnings] == ["RE306"]
    assert not result.ok


def test_render_shows_the_line_a_caret_help_and_a_summary() -> None:
    text = (
        'profile draft "x" {\n    indicators { a: item.orign == "CN" }\n'
        '    degree = 100 * a\n    controls { 102 "Check" mandatory from 50 }\n}\n'
    )
    out = check_sources({"x.rp": text}).render()
    assert out.splitlines() == [
        "x.rp:2:21: error[RE201]: unknown field `item.orign`",
        '   2 |     indicators { a: item.orign == "CN" }',
        "     |                     ^^^^^^^^^^",
        "     = help: did you mean `item.origin`?",
        "",
        "1 error, 0 warnings in 1 file",
    ]


def test_render_summary_counts_files_and_plurals() -> None:
    result = check_sources({"a.rp": draft(threshold="150"), "b.rp": draft(name="b")})
    assert result.render().splitlines()[-1] == "1 error, 1 warning in 2 files"
    assert check_sources({}).render() == "0 errors, 0 warnings in 0 files"


# ------------------------------------------------------------------------------------ paths


def test_check_paths_reports_a_broken_file_and_still_checks_the_good_ones(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a_broken.rp").write_text('profile draft "x" { indicators { a: item.origin = 1 }')
    (tmp_path / "sub" / "good.rp").write_text(draft(indicators='a: item.orign == "CN"'))
    (tmp_path / "notes.txt").write_text("not a profile")
    result = check_paths(tmp_path)
    by_file = {(Path(d.span.file).name, d.code) for d in result.diagnostics}
    assert ("a_broken.rp", "RE002") in by_file
    assert ("good.rp", "RE201") in by_file
    assert [Path(f.path).name for f in result.files] == ["good.rp"]
    assert sorted(Path(s).name for s in result.sources) == ["a_broken.rp", "good.rp"]


def test_check_paths_turns_missing_and_unreadable_files_into_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.rp"
    bad.write_bytes('profile draft "Пр" { }'.encode("cp1251"))
    missing = tmp_path / "missing.rp"
    result = check_paths([missing, bad])
    assert [(d.code, d.span.file) for d in result.errors] == [
        ("RE005", str(bad)),
        ("RE006", str(missing)),
    ]
    assert "no such file or directory" in result.errors[1].message
    # a problem of the whole file names the file without a line and column (not "file:0:0")
    assert result.errors[1].render().startswith(f"{missing}: error[RE006]: ")


def test_check_paths_takes_one_path_and_lists_each_file_once(tmp_path: Path) -> None:
    (tmp_path / "a.rp").write_text(draft())
    result = check_paths(str(tmp_path))
    again = check_paths([tmp_path, tmp_path / "a.rp"])
    assert list(result.sources) == [str(tmp_path / "a.rp")]
    assert len(again.sources) == 1


def test_load_checked_raises_with_every_error_and_returns_when_only_warnings(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.rp").write_text(draft(indicators="a: item.orign == 1  b: item.x > 1"))
    with pytest.raises(ProfileError) as info:
        load_checked(tmp_path)
    assert [d.code for d in info.value.diagnostics] == ["RE201", "RE201"]
    assert "item.orign" in str(info.value)
    ok = load_checked({"w.rp": draft(indicators='a: item.origin == "CN"  b: item.net_mass > 1')})
    assert ok.ok and [d.code for d in ok.warnings] == ["RE306"]


# ------------------------------------------------------------------------------------ across files


REGIONAL = """
profile 5B/20/2012/00007-01 "Regional price limits" {
    approved 2012-02-01
    in force 2012-03-01 .. 2012-12-31
    filling regional by "Regional customs"
    module declaration
    spheres 203
    regional { max_price: number }
    indicators { cheap: item.customs_value / item.net_mass < region.max_price }
    degree = 100 * cheap
    message "Price below {region.max_price}"
    controls { 102 "Documentary check" mandatory from 50 }
}
"""
FILL = """
fill for 5B/20/2012/00007-01 {
    office UA100000 order "1" of 2012-03-01 valid 2012-03-01 .. 2012-05-31
    values { max_price = 1.5 }
}
"""


def test_a_fill_finds_its_profile_in_another_file() -> None:
    assert check_sources({"profile.rp": REGIONAL, "fill.rp": FILL}).diagnostics == ()
    alone = check_sources({"fill.rp": FILL})
    assert codes(alone) == ["RE409"]


def test_a_fill_is_not_called_orphan_while_another_file_has_a_syntax_error() -> None:
    result = check_sources({"profile.rp": REGIONAL + "}", "fill.rp": FILL})
    assert codes(result) == ["RE002"]


def test_an_indicator_used_only_by_a_fill_control_is_used() -> None:
    profile = REGIONAL.replace(
        "indicators { cheap:", 'indicators { chinese: item.origin == "CN"  cheap:'
    )
    alone = check_sources({"p.rp": profile})
    assert [(d.code, d.message.split(" is ")[0]) for d in alone.diagnostics] == [
        ("RE415", "no fill"),  # without its fills, a regional profile selects nothing
        ("RE306", "indicator `chinese`"),
    ]
    fill = FILL.replace(
        "values", 'controls { 201 "Physical inspection" mandatory when chinese from 50 } values'
    )
    assert check_sources({"p.rp": profile, "f.rp": fill}).diagnostics == ()


def test_duplicates_across_files_name_the_other_file() -> None:
    result = check_sources({"a.rp": REGIONAL, "b.rp": REGIONAL})
    assert [(d.code, d.span.file, d.message) for d in result.diagnostics] == [
        ("RE501", "b.rp", "profile number 5B/20/2012/00007-01 is also used at a.rp:2"),
    ]


def test_a_regional_profile_without_a_valid_fill_is_reported_where_it_is() -> None:
    alone = check_sources({"p.rp": REGIONAL})
    assert [(d.code, d.severity.value, d.span.line, d.message) for d in alone.diagnostics] == [
        ("RE415", "warning", 5, "no fill is loaded for the regional profile "
         "5B/20/2012/00007-01: it applies to no declaration"),
    ]  # fmt: skip
    # one office's fill for March-May, another's from July: June and the first days are gaps;
    # nothing is said about the days after the last fill (the next quarter's is not approved)
    early = REGIONAL.replace("in force 2012-03-01", "in force 2012-02-15")
    july = (
        FILL.replace("UA100000", "UA200000")
        .replace('"1" of 2012-03-01', '"2" of 2012-05-20')
        .replace("2012-03-01 .. 2012-05-31", "2012-07-01 .. 2012-09-30")
    )
    result = check_sources({"p.rp": early, "f.rp": FILL, "g.rp": july})
    (d,) = result.diagnostics
    assert (d.code, d.span.file, d.span.line, d.span.column) == ("RE415", "p.rp", 4, 14)
    assert d.message == (
        "no office's fill is valid on 2012-02-15 .. 2012-02-29, 2012-06-01 .. 2012-06-30 of the "
        "in-force period (2012-02-15 .. 2012-12-31): the regional profile 5B/20/2012/00007-01 "
        "applies to no declaration on those 45 days"
    )
    # fills that cover the whole period up to the last one: nothing to say
    june = july.replace("2012-07-01", "2012-06-01").replace("2012-09-30", "2012-08-31")
    assert check_sources({"p.rp": REGIONAL, "f.rp": FILL, "g.rp": june}).diagnostics == ()
    # a file with errors: first the errors
    broken = FILL.replace("max_price = 1.5", 'max_price = "x"')
    assert codes(check_sources({"p.rp": early, "f.rp": broken})) == ["RE408"]


def test_overlapping_fills_in_two_files() -> None:
    later = FILL.replace('"1"', '"2"').replace("2012-03-01 ..", "2012-04-01 ..")
    result = check_sources({"p.rp": REGIONAL, "f1.rp": FILL, "f2.rp": later})
    assert [(d.code, d.span.file) for d in result.diagnostics] == [("RE411", "f2.rp")]
    assert "overlaps the one at f1.rp:2" in result.diagnostics[0].message


# ------------------------------------------------------------------------------------ models


def _profile(text: str) -> m.Profile:
    return parse(text, "x.rp").profiles[0]


def test_negative_history_numbers_are_errors_on_models_built_by_hand() -> None:
    p = _profile(
        draft(
            degree="100 * a + negative_history - positive_history",
            extra="history per item.origin over 30 days { negative max 10 per case 2 "
            "{ 0201: 1.0 } positive max 5 per clean control 1 }",
        )
    )
    assert p.history is not None and p.history.negative and p.history.positive
    bad = attrs.evolve(
        p.history,
        negative=attrs.evolve(
            p.history.negative,
            max=Decimal(-1),
            per_case=Decimal(-2),
            reasons=(attrs.evolve(p.history.negative.reasons[0], coefficient=Decimal("-0.5")),),
        ),
        positive=attrs.evolve(p.history.positive, max=Decimal(-5), step=Decimal(-1)),
    )
    found = check_models([m.SourceFile("x.rp", profiles=(attrs.evolve(p, history=bad),))])
    assert sorted(d.code for d in found) == ["RE312", "RE313", "RE313", "RE314", "RE315"]


def test_checks_work_without_source_text_and_spans() -> None:
    p = m.Profile(
        number=None,
        name="x",
        indicators=(m.Indicator("a", None, m.FieldRef("item.orign")),),
        degree=m.Arith("*", m.NumberLit(Decimal(100)), m.Ref("a")),
        controls=(m.Control("102", "Check", m.ControlKind.MANDATORY, Decimal(150)),),
    )
    found = check_models([m.SourceFile("x.rp", profiles=(p,))])
    assert sorted(d.code for d in found) == ["RE201", "RE301", "RE303"]


def test_expr_type_answers_the_static_type() -> None:
    text = 'list hro = ("CN")\n' + draft(
        extra='filling regional by "R" regional { limit: number  since: date }',
        indicators='a: item.origin == "CN" and item.net_mass < region.limit '
        "and declaration.date > region.since",
    )
    source = parse(text, "x.rp")
    p = source.profiles[0]
    cond = p.indicators[0].condition
    assert isinstance(cond, m.And) and isinstance(cond.left, m.And)
    limit = cond.left.right
    assert isinstance(limit, m.Compare)
    cases = {
        limit: ValueType.BOOLEAN,
        limit.right: ValueType.NUMBER,
        m.FieldRef("item.origin"): ValueType.STRING,
        m.FieldRef("item.description"): ValueType.STRING,
        m.FieldRef("declaration.date"): ValueType.DATE,
        m.FieldRef("region.since"): ValueType.DATE,
        m.FieldRef("declaration.declarant.aeo"): ValueType.BOOLEAN,
        m.Ref("a"): ValueType.BOOLEAN,
        m.Ref("nope"): ValueType.UNKNOWN,
        m.FieldRef("item.nope"): ValueType.UNKNOWN,
        m.HistoryRef(m.HistoryKind.NEGATIVE): ValueType.NUMBER,
        m.Arith("*", m.Ref("a"), m.NumberLit(Decimal(2))): ValueType.NUMBER,
        m.Arith("*", m.FieldRef("item.origin"), m.NumberLit(Decimal(2))): ValueType.UNKNOWN,
        m.InList(m.FieldRef("item.origin"), m.Ref("hro")): ValueType.BOOLEAN,
        m.Cond(m.Ref("a"), m.Ref("a"), m.NumberLit(Decimal(1))): ValueType.NUMBER,
        m.Call("round", (m.FieldRef("item.net_mass"),)): ValueType.NUMBER,
    }
    for expr, expected in cases.items():
        assert expr_type(expr, p, None, source.lists) is expected, expr


# ------------------------------------------------------------------------------------ intervals


def iv(lo: float, hi: float) -> Interval:
    return Interval(lo, hi)


@pytest.mark.parametrize(
    ("result", "lo", "hi"),
    [
        (iv(1, 2) + iv(3, 5), 4, 7),
        (iv(1, 2) - iv(3, 5), -4, -1),
        (iv(-1, 2) * iv(3, 4), -4, 8),
        (iv(-2, -1) * iv(-3, 4), -8, 6),
        (iv(0, 1) * iv(-INF, INF), -INF, INF),
        (iv(0, 0) * iv(-INF, INF), 0, 0),
        (iv(0, 1) * iv(0, INF), 0, INF),
        (iv(1, 2) / iv(4, 8), 0.125, 0.5),
        (iv(-6, 3) / iv(-3, -1), -3, 6),
        (iv(0, INF) / iv(2, 4), 0, INF),
        (iv(1, 2) / iv(-1, 1), -INF, INF),
        (iv(1, 2) / iv(0, 1), -INF, INF),
        (-iv(-1, 3), -3, 1),
        (iv(-5, 120).clamp(), 0, 100),
        (iv(20, 30).hull(iv(50, 60)), 20, 60),
    ],
)
def test_interval_rules(result: Interval, lo: float, hi: float) -> None:
    assert (result.lo, result.hi) == (lo, hi)


def test_division_by_an_interval_with_zero_may_be_missing() -> None:
    assert (iv(1, 2) / iv(-1, 1)).missing
    assert not (iv(1, 2) / iv(1, 2)).missing


HISTORY = (
    "history per item.origin over 30 days { negative max 30 { 0201: 1.0 } "
    "positive max 20 per clean control 2 }"
)


@pytest.mark.parametrize(
    ("degree", "extra", "lo", "hi"),
    [
        ("40 * a + 30 * b + 30 * c", "", 0, 100),
        ("40 * a + 30 * b + negative_history - positive_history", HISTORY, -20, 100),
        ("min(40, 100 * a) - 10", "", -10, 30),
        ("max(10, 20 * a, 5)", "", 10, 20),
        ("if a then 80 else 20", "", 20, 80),
        ("-(50 * a) + 100", "", 50, 100),
        ("abs(30 * a - 40)", "", 10, 40),
        ("abs(a - b)", "", 0, 1),
        ("round(a * 0.44 + 2 * b, 1)", "", 0, 2.5),
        ("round(a * 0.4 + 2.6 * b)", "", 0, 3),
        ("100 * a / (1 + b)", "", 0, 100),
        ("100 * a / (b - c)", "", -INF, INF),
        ("item.net_mass / 10", "", -INF, INF),
        # a numeric field may be missing, so may the degree: then it is 0
        ("50 + item.net_mass * 0", "", 0, 50),
        ("abs(item.duty_rate) + 10", "", 0, INF),
        ("100 * declaration.declarant.aeo", "", 0, 100),
        ("a == b", "", 0, 1),
        ("true", "", 1, 1),
    ],
)
def test_degree_range_by_hand(degree: str, extra: str, lo: float, hi: float) -> None:
    indicators = 'a: item.origin == "CN"  b: item.net_mass > 1  c: item.brand is missing'
    p = _profile(draft(indicators=indicators, degree=degree, extra=extra))
    assert degree_range(p) == (lo, hi)


def test_degree_range_without_degree_is_zero() -> None:
    p = m.Profile(number=None, name="x")
    assert degree_range(p) == (0.0, 0.0)


# A small reference evaluator for numeric expressions over indicators (0/1) and constants,
# with the language's rules: division by zero and a missing operand give a missing value (None).
def evaluate(e: m.Expr, env: dict[str, int]) -> float | None:
    match e:
        case m.NumberLit(value=v):
            return float(v)
        case m.Ref(name=n):
            return float(env[n])
        case m.Neg(operand=o):
            x = evaluate(o, env)
            return None if x is None else -x
        case m.Arith(op=op, left=a, right=b):
            x, y = evaluate(a, env), evaluate(b, env)
            if x is None or y is None:
                return None
            if op == "/":
                return None if y == 0 else x / y
            return {"+": x + y, "-": x - y, "*": x * y}[op]
        case m.Call(func=f, args=args):
            vals = [evaluate(a, env) for a in args]
            if any(v is None for v in vals):
                return None
            nums = [v for v in vals if v is not None]
            if f == "min":
                return min(nums)
            if f == "max":
                return max(nums)
            if f == "abs":
                return abs(nums[0])
            return float(round(nums[0], int(nums[1]) if len(nums) > 1 else None))
        case m.Cond(test=t, then=a, otherwise=b):
            return evaluate(a if env[t.name] else b, env)  # type: ignore[union-attr]
    raise AssertionError(e)


NAMES = ("a", "b", "c")
numbers = st.decimals(min_value=-50, max_value=50, places=1).map(lambda d: m.NumberLit(d))
leaves = st.one_of(numbers, st.sampled_from(NAMES).map(m.Ref))


def _grow(children: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Expr]:
    return st.one_of(
        st.builds(m.Arith, st.sampled_from("+-*/"), children, children),
        children.map(m.Neg),
        st.builds(
            lambda f, xs: m.Call(f, tuple(xs)),
            st.sampled_from(("min", "max")),
            st.lists(children, min_size=2, max_size=3),
        ),
        children.map(lambda x: m.Call("abs", (x,))),
        st.builds(
            lambda x, d: m.Call("round", (x, m.NumberLit(Decimal(d)))), children, st.integers(-1, 2)
        ),
        st.builds(m.Cond, st.sampled_from(NAMES).map(m.Ref), children, children),
    )


expressions = st.recursive(leaves, _grow, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(expressions, st.fixed_dictionaries({n: st.integers(0, 1) for n in NAMES}))
def test_interval_contains_every_value(expr: m.Expr, env: dict[str, int]) -> None:
    p = m.Profile(
        number=None,
        name="x",
        # indicators that may be true or false, as ``env`` sets them
        indicators=tuple(m.Indicator(n, None, m.IsMissing(m.FieldRef(f"item.{n}"))) for n in NAMES),
        degree=expr,
    )
    found = expr_range(expr, p)
    value = evaluate(expr, env)
    if value is None:
        assert found.missing
    elif not math.isinf(value):
        assert found.lo - 1e-9 * (1 + abs(value)) <= value <= found.hi + 1e-9 * (1 + abs(value))


# ------------------------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    ("start", "last"),
    [
        ("2012-03-15", "2012-06-14"),
        ("2012-03-01", "2012-05-31"),
        ("2012-11-30", "2013-02-28"),
        ("2011-11-30", "2012-02-29"),
        ("2013-01-31", "2013-04-30"),
        ("2012-12-01", "2013-02-28"),
        ("2012-10-31", "2013-01-30"),
    ],
)
def test_last_valid_day_of_a_fill(start: str, last: str) -> None:
    assert last_valid_day(dt.date.fromisoformat(start)) == dt.date.fromisoformat(last)


def test_every_code_is_documented_with_its_severity() -> None:
    doc = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    for code, info in CODES.items():
        heading = re.search(rf"^### {code} .*$", doc, re.M)
        assert heading, f"{code} is not documented"
        section = doc[heading.end() : heading.end() + 2000]
        assert f"**{info.severity.value}**" in section.split("\n### ")[0], code


def test_golden_diagnostics_carry_the_registered_severity() -> None:
    for case in sorted(GOLDEN.glob("*.rp")):
        result = check_sources({case.name: case.read_text(encoding="utf-8")})
        for d in result.diagnostics:
            assert d.severity is CODES[d.code].severity, (case.name, d)
            assert d.span.line >= 1, (case.name, d)


def test_warnings_do_not_make_a_result_fail() -> None:
    result = check_sources({"x.rp": draft(indicators='a: item.origin == "CN"  b: item.x > 1')})
    assert {d.severity for d in result.diagnostics} == {Severity.ERROR, Severity.WARNING}
    assert not result.ok
    warned = check_sources({"x.rp": draft(indicators='a: item.origin == "CN"  b: a')})
    assert warned.ok and codes(warned) == ["RE306"]


# ------------------------------------------------------------------------------ date differences


def test_the_difference_of_two_dates_is_a_number_of_days() -> None:
    from riskengine.evaluator import Engine

    text = draft(
        indicators="late: declaration.transit_deadline - declaration.date > 10",
        degree="100 * late",
    )
    result = check_sources({"d.rp": text})
    assert result.errors == [], result.render()
    engine = Engine.load(sources={"d.rp": text}, allow_drafts=True)
    header = {"id": "X1", "date": "2025-03-01", "items": [{"hs_code": "6403990000"}]}
    far = engine.score({**header, "transit_deadline": "2025-03-12"}, dt.date(2025, 3, 1))
    near = engine.score({**header, "transit_deadline": "2025-03-11"}, dt.date(2025, 3, 1))
    missing = engine.score(header, dt.date(2025, 3, 1))
    assert [f.degree for f in far.fired] == [100]  # 11 days > 10
    assert not near.fired and not missing.fired  # 10 days; a missing date is not late


def test_a_text_minus_a_date_is_reported_once_on_the_text() -> None:
    text = draft(indicators="a: item.origin - 2024-01-01 > 3")
    result = check_sources({"d.rp": text})
    (problem,) = [d for d in result.diagnostics if d.code == "RE221"]
    assert problem.message == (
        "`-` needs two numbers or two dates (their difference in days), but this is a text"
    )
    line = text.splitlines()[problem.span.line - 1]
    assert line[problem.span.column - 1 :].startswith("item.origin - ")


def test_a_date_plus_a_date_is_still_an_error() -> None:
    result = check_sources({"d.rp": draft(indicators="a: declaration.date + declaration.date > 3")})
    assert [d.code for d in result.errors] == ["RE221", "RE221"]
