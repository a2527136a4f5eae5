"""The limits every backend needs (riskengine.semantics.limits, docs/language.md#limits).

A profile at each limit checks clean, compiles and scores with the evaluator as the language
says; one step beyond it is a located error of `check` (file, line, column, the line, a caret);
and nesting far beyond (400, 1,000, 10,000 levels) never reaches anything that recurses:
``parse_source``, ``check``, ``fmt`` and ``show`` report RE601 and nothing raises.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from riskengine import model as m
from riskengine.checks import check_models, check_sources
from riskengine.cli import cli
from riskengine.cli.common import EXIT_INTERNAL, EXIT_PROBLEMS
from riskengine.diagnostics import ProfileError
from riskengine.evaluator import Engine
from riskengine.format import format_text
from riskengine.semantics.limits import (
    MAX_EXPRESSION_DEPTH,
    MAX_HISTORY_DAYS,
    MAX_HISTORY_PREFIX,
    MAX_PROFILE_SIZE,
    expression_size,
    nesting_depth,
    scan,
)
from riskengine.syntax import parse, parse_source
from tests import strategies

AS_OF = dt.date(2024, 4, 2)


def profile(condition: str, *, extra: str = "", degree: str = "100", when: str = "a") -> str:
    """A draft whose indicator ``a`` is ``condition``: with the default degree and control, it
    fires (degree 100) when ``a`` holds."""
    return (
        'profile draft "Limit" {\n'
        f"    indicators {{\n        a: {condition}\n{extra}    }}\n"
        f"    degree = {degree}\n"
        f'    controls {{ 102 "Documentary check" mandatory when {when} from 50 }}\n'
        "}\n"
    )


def declaration(net_mass: float) -> dict[str, object]:
    return {
        "id": "UA100110-2024-000123",
        "office": "UA100110",
        "declarant": {"id": "31234567"},
        "items": [
            {"hs_code": "6403990000", "origin": "CN", "net_mass": net_mass, "customs_value": 5}
        ],
    }


def degrees(text: str, net_mass: float) -> list[float]:
    """The degrees of the profiles of ``text`` that fire on a declaration with this mass."""
    engine = Engine.load([], sources={"limit.rp": text}, allow_drafts=True)
    return [fired.degree for fired in engine.score(declaration(net_mass), AS_OF).fired]


def errors(text: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in check_sources({"l.rp": text}).errors]


def assert_clean(text: str) -> None:
    result = check_sources({"limit.rp": text})
    assert result.ok, result.render()


# ------------------------------------------------------------------------------------ depth


def _depth(text: str) -> int:
    degree = parse(f'profile "d" {{ degree = {text} }}').profiles[0].degree
    assert degree is not None
    return nesting_depth(degree)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("x", 1),
        ("((x))", 1),
        ("x > 1", 2),
        ("-x", 2),
        ("- - x", 3),
        ("a + b - c + d", 2),
        ("a + (b - c)", 3),
        ("a * b + c", 3),
        ("a and b and c and d", 2),
        ("not (x > 1 and y < 2)", 4),
        ("max(a, b + c)", 3),
        ("if a then b else c", 2),
        ("x in (1, 2, 3)", 2),
    ],
)
def test_depth_is_counted_as_documented(text: str, depth: int) -> None:
    assert _depth(text) == depth


def test_size_counts_operations_values_and_list_items() -> None:
    degree = parse('profile "d" { degree = x in (1, 2, 3) and y > 1 }').profiles[0].degree
    assert degree is not None
    # and, in, x, the list and its 3 values, >, y, 1
    assert expression_size(degree) == 10


N = MAX_EXPRESSION_DEPTH - 2  # operations above a comparison (2 levels) at the limit

AT_THE_LIMIT = {
    "not": "not " * N + "item.net_mass > 1",
    "unary minus": "-" * N + "item.net_mass > 1",
    "calls": "abs(" * N + "item.net_mass" + ")" * N + " > 1",
    "parenthesised sums": "1 + (" * N + "item.net_mass" + ")" * N + f" > {N + 1}",
    "nested if": "("
    + "if item.net_mass > 1 then " * (N - 1)
    + "item.net_mass"
    + " else 0" * (N - 1)
    + ") > 1",
    "mixed": "(" * (N // 2) + "item.net_mass" + " * 1 + 0)" * (N // 2) + " > 1",
}


@pytest.mark.parametrize("shape", list(AT_THE_LIMIT))
def test_an_expression_at_the_depth_limit_checks_compiles_and_scores(shape: str) -> None:
    text = profile(AT_THE_LIMIT[shape])
    source = parse(text)
    assert nesting_depth(source.profiles[0].indicators[0].condition) == MAX_EXPRESSION_DEPTH
    assert_clean(text)
    assert format_text(text, "limit.rp")  # the formatter writes it
    assert degrees(text, net_mass=5) == [100]
    assert degrees(text, net_mass=0.5) == []


@pytest.mark.parametrize("shape", ["not", "unary minus", "calls", "parenthesised sums"])
def test_one_level_more_is_a_located_error(shape: str) -> None:
    deeper = {
        "not": "not " + AT_THE_LIMIT["not"],
        "unary minus": "-" + AT_THE_LIMIT["unary minus"],
        "calls": "abs(" * (N + 1) + "item.net_mass" + ")" * (N + 1) + " > 1",
        "parenthesised sums": "1 + (" * (N + 1) + "item.net_mass" + ")" * (N + 1) + " > 1",
    }[shape]
    text = profile(deeper)
    result = check_sources({"deep.rp": text})
    (d,) = result.errors
    assert (d.code, d.span.line, d.span.column) == ("RE601", 3, 9)
    assert d.message == (
        f"the condition of indicator `a` is nested {MAX_EXPRESSION_DEPTH + 1} levels deep; at "
        f"most {MAX_EXPRESSION_DEPTH} levels are allowed"
    )
    rendered = d.render(dict(result.sources))
    assert rendered.startswith("deep.rp:3:9: error[RE601]:")
    assert "   3 |         a: " in rendered
    assert "\n     |         ^\n" in rendered.replace("^^", "^").replace("^^", "^")
    assert not result.warnings  # nothing about the stand-in the checks saw in its place


def _chain(levels: int) -> str:
    """Indicators each one level deeper than the one before: ``a{levels}`` is the last."""
    lines = ["        a0: item.net_mass < 1\n"]
    lines += [f"        a{i}: not a{i - 1}\n" for i in range(1, levels + 1)]
    return "".join(lines)


def test_indicators_count_with_their_depth_where_they_are_used() -> None:
    # a97 is 2 + 97 = 99 levels; `100 * a97` in the degree 100: at the limit
    at_limit = profile("true", extra=_chain(97), degree="100 * a97", when="true")
    assert_clean(at_limit)
    assert degrees(at_limit, net_mass=5) == [100]  # 97 `not` of false
    assert degrees(at_limit, net_mass=0.5) == []
    # one more: the degree is 101 levels with a98 written in place; reported at the degree
    beyond = profile("true", extra=_chain(98), degree="100 * a98", when="true")
    result = check_sources({"chain.rp": beyond})
    assert [(d.code, d.span.line) for d in result.errors] == [("RE601", 104)]
    assert "`a98` is 100 levels deep" in result.errors[0].message


@pytest.mark.parametrize("levels", [400, 1_000, 10_000])
@pytest.mark.parametrize("kind", ["not ", "-", "(", "abs("])
def test_nesting_far_beyond_the_limit_is_reported_not_raised(kind: str, levels: int) -> None:
    if kind == "(":
        condition = "(" * levels + "item.net_mass > 1" + ")" * levels + " and " + "not " * levels
        condition += "true"
    elif kind == "abs(":
        condition = "abs(" * levels + "item.net_mass" + ")" * levels + " > 1"
    else:
        condition = kind * levels + "item.net_mass > 1"
    text = profile(condition)
    parsed = parse_source(text, "deep.rp")
    assert [d.code for d in parsed.diagnostics] == ["RE601"]
    assert f"nested {levels + 2:,} levels deep" in parsed.diagnostics[0].message
    checked = check_sources({"deep.rp": text})
    assert [(d.code, d.span.line, d.span.column) for d in checked.diagnostics] == [("RE601", 3, 9)]
    with pytest.raises(ProfileError) as raised:
        format_text(text, "deep.rp")
    assert [d.code for d in raised.value.diagnostics] == ["RE601"]


def test_the_command_line_reports_deep_nesting_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.rp"
    path.write_text(profile("not " * 10_000 + "item.net_mass > 1"), encoding="utf-8")
    for args in (["check", str(path)], ["fmt", "--check", str(path)], ["show", str(path)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == EXIT_PROBLEMS != EXIT_INTERNAL, (args, result.output)
        assert "Traceback" not in result.output
        assert "RE601" in result.output, args


# ------------------------------------------------------------------------------------ size


def _list_profile(values: int) -> str:
    items = ", ".join(f'"X{i}"' for i in range(values))
    return profile(f"item.origin in ({items}) or item.net_mass > 1")


def test_a_profile_at_the_size_limit_checks_compiles_and_scores() -> None:
    # a: or, in, the field, the list and its values, >, the field, 1: values + 7, counted at
    # its definition and again in the control's `when a`; the degree `100`: 2 * values + 15
    text = _list_profile((MAX_PROFILE_SIZE - 15) // 2)
    assert_clean(text)
    assert degrees(text, net_mass=5) == [100]
    assert degrees(text, net_mass=0.5) == []
    result = check_sources({"big.rp": _list_profile((MAX_PROFILE_SIZE - 15) // 2 + 1)})
    assert [(d.code, d.span.line, d.span.column) for d in result.errors] == [("RE603", 1, 15)]
    assert "have 10,001 operations and values" in result.errors[0].message


def test_width_is_not_limited_only_size() -> None:
    """A sum or a conjunction as wide as the size allows: the compilers flatten them."""
    # a: 3, counted again in the control's `when a`: 6, the degree 100 and 2 per `+ 0`
    terms = (MAX_PROFILE_SIZE - 7) // 2
    wide_sum = profile("item.net_mass > 1", degree="100" + " + 0" * terms)
    assert_clean(wide_sum)
    assert degrees(wide_sum, net_mass=5) == [100]
    # a control condition of n comparisons: 4 n - 1, with the 4 of the indicator and degree
    conjuncts = (MAX_PROFILE_SIZE - 3) // 4
    wide_and = profile(
        "item.net_mass > 1", when=" and ".join(["item.customs_value > 1"] * conjuncts)
    )
    assert_clean(wide_and)
    assert degrees(wide_and, net_mass=5) == [100]
    assert degrees(wide_and.replace("> 1 from", "> 9 from"), net_mass=5) == []


def test_indicators_count_their_size_at_every_use() -> None:
    doubling = "".join(f"        b{i}: b{i - 1} and b{i - 1}\n" for i in range(1, 14))
    text = profile("b13", extra="        b0: item.net_mass > 1\n" + doubling)
    assert [code for code, _line, _col in errors(text)] == ["RE603"]


# ------------------------------------------------------------------------------------ numbers


def test_numbers_at_the_limit_check_compile_and_score() -> None:
    text = profile(
        "item.customs_value < 999999999999999.999999999999999 and "
        "item.net_mass > 0.000000000000001 and item.net_mass < 100000000000000 + 0.5"
    )
    assert_clean(text)
    assert degrees(text, net_mass=5) == [100]


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("1234567890123456", "the number `1234567890123456` has 16 digits before the decimal"),
        ("0.1234567890123456", "the number `0.1234567890123456` has 16 digits after the"),
        ("9" * 310, "this number has 310 digits before the decimal point"),
        ("1." + "0" * 1_000_000 + "1", "this number has 1,000,001 digits after the decimal"),
    ],
)
def test_a_number_beyond_the_limit_is_a_located_error(literal: str, message: str) -> None:
    result = check_sources({"n.rp": profile(f"item.net_mass < {literal}")})
    (d,) = result.errors
    assert (d.code, d.span.line, d.span.column) == ("RE602", 3, 28)
    assert d.message.startswith(message)


# ------------------------------------------------------------------------------------ history


def _history(window: str, prefix: str, weights: tuple[str, ...]) -> str:
    neg_max, per_case, coefficient, pos_max, step = weights
    return (
        'profile draft "History" {\n'
        '    indicators { footwear: item.hs_code starts with ("6403") }\n'
        "    degree = 60 * footwear + negative_history - positive_history\n"
        '    controls { 102 "Documentary check" mandatory from 50 }\n'
        f"    history per declaration.declarant.id, item.hs_code[:{prefix}] over {window} days {{\n"
        f"        negative max {neg_max} per case {per_case} {{ 0201: {coefficient} }}\n"
        f"        positive max {pos_max} per clean control {step}\n"
        "    }\n"
        "}\n"
    )


def test_history_at_its_limits_checks_compiles_and_scores() -> None:
    text = _history(
        str(MAX_HISTORY_DAYS),
        str(MAX_HISTORY_PREFIX),
        ("1000", "0.000001", "1000", "1000", "999.999999"),
    )
    assert_clean(text)
    assert degrees(text, net_mass=5) == [60]


GOOD = ("30", "1", "1.0", "20", "2")


@pytest.mark.parametrize(
    ("window", "prefix", "weights", "expected"),
    [
        ("3661", "4", GOOD, ("RE605", 5, "3661")),
        ("9" * 5000, "4", GOOD, ("RE605", 5, "9999")),
        ("365", "101", GOOD, ("RE605", 5, "101")),
        ("365", "4", ("30", "1", "1" + "0" * 29, "20", "2"), ("RE604", 6, "1" + "0" * 29)),
        ("365", "4", ("1000.1", "1", "1.0", "20", "2"), ("RE604", 6, "1000.1")),
        ("365", "4", ("30", "0.0000001", "1.0", "20", "2"), ("RE604", 6, "0.0000001")),
        ("365", "4", ("30", "1", "1.0", "20", "2.1234567"), ("RE604", 7, "2.1234567")),
    ],
)
def test_history_beyond_its_limits_is_a_located_error(
    window: str,
    prefix: str,
    weights: tuple[str, str, str, str, str],
    expected: tuple[str, int, str],
) -> None:
    text = _history(window, prefix, weights)
    code, line, token = expected
    column = text.split("\n")[line - 1].index(token) + 1
    assert errors(text) == [(code, line, column)]


def test_history_limits_are_checked_on_models_built_without_the_parser() -> None:
    p = parse(_history("365", "4", GOOD)).profiles[0]
    beyond = m.History(
        (m.HistorySubject(m.FieldRef("item.hs_code"), 500),),
        10**40,
        m.NegativeHistory(Decimal(30), (m.ReasonCoefficient("0201", Decimal("1E+29")),)),
    )
    found = check_models([m.SourceFile("h.rp", (attrs.evolve(p, history=beyond),))])
    assert sorted(d.code for d in found if d.code.startswith("RE6")) == ["RE604", "RE605", "RE605"]


# -- the measures the parser takes on its own (riskengine.semantics.limits, syntax.build) --------


@settings(max_examples=300, deadline=None)
@given(strategies.exprs)
def test_the_parsers_depth_is_the_scans(expr: m.Expr) -> None:
    """The parser measures an expression's depth alone (``nesting_depth``) by the rules of the
    checks' full scan."""
    assert nesting_depth(expr) == scan(expr).depth


@pytest.mark.parametrize(
    "where",
    ["unless on the next line", "after a title", "control condition", "exception after a title"],
)
def test_a_deep_expression_is_reported_wherever_it_is_written(where: str) -> None:
    """The parser skips the depth measure only when the text from the statement (or from
    what the expression is written after) to the end of the expression is too short to hold
    that many levels; across lines, and after a title, it still counts every character."""
    deep = "not " * (MAX_EXPRESSION_DEPTH + 1) + "item.net_mass > 1"
    if where == "unless on the next line":
        text = profile("item.net_mass > 1\n            unless " + deep)
        what = "the `unless` of indicator `a`"
    elif where == "after a title":
        text = profile("true", extra=f'        b "A title": {deep}\n', when="a or b")
        what = "the condition of indicator `b`"
    elif where == "control condition":
        text = profile("true", when=deep)
        what = "the condition of control 102"
    else:
        text = profile("true").replace(
            "    degree", f'    exceptions {{\n        e "A title": {deep}\n    }}\n    degree'
        )
        what = "the condition of exception `e`"
    parsed = parse_source(text, "deep.rp")
    assert [d.code for d in parsed.diagnostics] == ["RE601"], text
    assert parsed.diagnostics[0].message.startswith(
        f"{what} is nested {MAX_EXPRESSION_DEPTH + 3} levels deep"
    )
    shallow = text.replace("not " * (MAX_EXPRESSION_DEPTH + 1), "not " * 10)
    assert parse_source(shallow, "deep.rp").diagnostics == []
