"""Every expression within the language's limits compiles to Python and computes the same.

CPython refuses 200 nested parentheses and about 2,000 chained binary operators: the code
generator writes n-ary sums, products, ``and`` and ``or`` flat (in chunks), folds ``not not`` and
``- -``, and binds deep subexpressions to temporaries. Wide expressions are checked at 1,000
operands against values computed here; deep ones at the depth limit against the reference
interpreter (explanations included).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from riskengine import model as m
from riskengine.catalogue import default_catalogue
from riskengine.diagnostics import ProfileError
from riskengine.evaluator import Engine, codegen
from riskengine.evaluator.codegen import Unit
from riskengine.semantics.limits import MAX_EXPRESSION_DEPTH
from riskengine.syntax import parse_source
from tests.eval_strategies import unchecked_declaration
from tests.reference_interpreter import reference_score

DAY = dt.date(2024, 3, 1)
TYPES = {f.path: f.type.value for f in default_catalogue()}
N = 1_000


def _source(indicators: str, degree: str) -> str:
    return f"""
profile draft "limits" {{
    indicators {{ {indicators} }}
    degree = {degree}
    controls {{ 102 "Documentary check" mandatory from 0 }}
}}
"""


def _parsed(indicators: str, degree: str) -> m.Profile:
    parsed = parse_source(_source(indicators, degree), "limits.rp")
    assert parsed.source is not None and parsed.ok, parsed.diagnostics
    return parsed.source.profiles[0]


def _compiled(indicators: str, degree: str) -> tuple[Any, Any]:
    """The generated ``evaluate`` and ``explain`` of a profile, straight from the generator
    (without the checks and the index, which have limits of their own)."""
    return _generated(_parsed(indicators, degree))


def _generated(profile: m.Profile) -> tuple[Any, Any]:
    unit = Unit(profile, profile.controls, profile.message, {}, TYPES, "limits", "limits.rp")
    _, fast = codegen.compile_unit(unit, "evaluate")
    _, explained = codegen.compile_unit(unit, "explain")
    return fast["evaluate"], explained["explain"]


def _hist(*_: Any) -> Any:
    raise AssertionError("no history in these profiles")


def _degree(indicators: str, degree: str, item: dict[str, Any]) -> tuple[Any, Any]:
    """(degree from the fast path, degree value before the clamp from the explaining path)."""
    fast, explain = _compiled(indicators, degree)
    raw = fast({}, (item,), {}, _hist, DAY)
    (record,) = explain({}, (item,), {}, _hist, DAY)
    assert raw is not None and raw[0] == record[5]
    return raw[0], record[4]


def _fires(indicators: str, item: dict[str, Any]) -> bool:
    fast, explain = _compiled(indicators, "100 * a")
    raw = fast({}, (item,), {}, _hist, DAY)
    (record,) = explain({}, (item,), {}, _hist, DAY)
    assert raw is not None  # from 0: always fires
    assert record[5] == raw[0]
    return bool(raw[0] == 100.0)


FIELDS = ("item.net_mass", "item.customs_value", "item.packages")
ITEM = {"net_mass": 0.1, "customs_value": 3.7, "packages": 2}


def _operands(n: int) -> list[str]:
    return [FIELDS[k % 3] for k in range(n)]


def _values(n: int) -> list[float]:
    return [float(ITEM[f.split(".")[1]]) for f in _operands(n)]


@pytest.mark.parametrize("n", [N, 3 * N])  # CPython compiles ~2,000 chained operators at most
def test_a_sum_of_1000_terms_computes_left_to_right(n: int) -> None:
    expected = functools.reduce(operator.add, _values(n))
    terms = " + ".join(_operands(n))
    shift = 50.0 - expected
    d, dv = _degree("a: true", f"{terms} + {shift!r}".replace("+ -", "- "), ITEM)
    assert dv == expected + shift
    assert d == min(100.0, max(0.0, dv))
    # a difference chain, with conditions counting 1
    signs = " - ".join(_operands(N))
    _, dv = _degree("a: true", f"{signs} + a", ITEM)
    values = _values(N)
    assert dv == functools.reduce(operator.sub, values[1:], values[0]) + 1


def test_a_sum_of_1000_terms_with_a_missing_term_is_missing() -> None:
    item = {k: v for k, v in ITEM.items() if k != "packages"}
    assert _degree("a: true", " + ".join(_operands(N)), item) == (0.0, None)


def test_a_product_of_1000_factors_and_its_overflow() -> None:
    factors = " * ".join(["item.net_mass"] * N)
    item = {"net_mass": 1.001}
    expected = functools.reduce(operator.mul, [1.001] * N)
    assert _degree("a: true", factors, item) == (min(100.0, expected), expected)
    assert _degree("a: true", factors, {"net_mass": 10.0}) == (0.0, None)  # 1e1000: missing
    quotients = " / ".join(["item.net_mass"] * N)
    assert _degree("a: true", quotients, {"net_mass": 1.0}) == (1.0, 1.0)
    assert _degree("a: true", quotients, {"net_mass": 0.0}) == (0.0, None)  # / 0


def test_and_or_of_1000_conditions() -> None:
    conjunction = " and ".join(f"{f} > 0" for f in _operands(N))
    assert _fires(f"a: {conjunction}", ITEM)
    assert not _fires(f"a: {conjunction}", {**ITEM, "packages": 0})
    assert not _fires(f"a: {conjunction}", {"net_mass": 1, "customs_value": 1})  # missing
    disjunction = " or ".join(f"{f} > 100" for f in _operands(N))
    assert not _fires(f"a: {disjunction}", ITEM)
    assert _fires(f"a: {disjunction}", {**ITEM, "packages": 101})


# `check` rejects these depths (RE601); the generator folds them anyway (a model built by a
# program does not go through the parser): the models are built here, not parsed.


@pytest.mark.parametrize("count", [199, 200, 201, 1000])
def test_many_nots_fold(count: int) -> None:
    profile = _parsed("a: item.net_mass > 0", "100 * a")
    (ind,) = profile.indicators
    condition = ind.condition
    for _ in range(count):
        condition = m.Not(condition)
    profile = attrs.evolve(profile, indicators=(attrs.evolve(ind, condition=condition),))
    fast, explain = _generated(profile)
    raw = fast({}, (ITEM,), {}, _hist, DAY)
    (record,) = explain({}, (ITEM,), {}, _hist, DAY)
    assert raw is not None and raw[0] == record[5] == (100.0 if count % 2 == 0 else 0.0)


@pytest.mark.parametrize("count", [99, 100, 101, 1000])
def test_many_unary_minuses_fold(count: int) -> None:
    sign = -1.0 if count % 2 else 1.0
    base = _parsed("a: true", "item.net_mass + 50")
    assert isinstance(base.degree, m.Arith)
    operand: m.Expr = base.degree.left
    for _ in range(count):
        operand = m.Neg(operand)
    profile = attrs.evolve(base, degree=attrs.evolve(base.degree, left=operand))
    fast, explain = _generated(profile)
    for item, expected in (({"net_mass": 3.0}, sign * 3.0 + 50), ({}, None)):
        raw = fast({}, (item,), {}, _hist, DAY)
        (record,) = explain({}, (item,), {}, _hist, DAY)
        assert record[4] == expected
        assert raw is not None and raw[0] == record[5] == (expected or 0.0)


# ------------------------------------------------------------------------------ depth, end to end

D = MAX_EXPRESSION_DEPTH


def _nested(open_: str, inner: str, close: str) -> Callable[[int], str]:
    return lambda depth: open_ * depth + inner + close * depth


def _rejected_as_too_deep(source: str) -> bool:
    try:
        Engine.load(sources={"deep.rp": source}, allow_drafts=True)
    except ProfileError as exc:
        assert "RE601" in str(exc), str(exc)
        return True
    return False


@functools.cache
def _at_the_limit(case: str) -> str:
    """The source of the case nested as deep as `check` accepts: one level more is RE601."""
    indicators, degree = DEEP[case]

    def source(n: int) -> str:
        return _source(f"a0: item.packages > 1  {indicators(n)}", degree(n))

    if not _rejected_as_too_deep(source(D)):
        return source(D)  # a chain of one operator counts once: any length is within the limit
    low, high = 1, D - 1  # accepted at low; the answer lies in low..high
    assert not _rejected_as_too_deep(source(low))
    while low < high:
        mid = (low + high + 1) // 2
        if _rejected_as_too_deep(source(mid)):
            high = mid - 1
        else:
            low = mid
    assert _rejected_as_too_deep(source(low + 1))  # at the limit
    assert low >= D // 2 - 2  # each nesting adds at most two levels
    return source(low)


def _fixed(text: str) -> Callable[[int], str]:
    return lambda _: text


def _indicator(open_: str, inner: str, close: str) -> Callable[[int], str]:
    nested = _nested(open_, inner, close)
    return lambda depth: "a: " + nested(depth)


T = _fixed("a: true")
DEEP: dict[str, tuple[Callable[[int], str], Callable[[int], str]]] = {
    "parentheses": (T, _nested("(", "item.net_mass", " + 1)")),
    "sum and product": (T, _nested("(", "item.net_mass", " * 1.01 + item.net_mass)")),
    "division": (T, _nested("(", "item.customs_value", " / item.net_mass + 1)")),
    "max": (T, _nested("max(", "item.net_mass", ", 1)")),
    "min": (T, _nested("min(", "item.customs_value", ", item.net_mass + 5)")),
    "round": (T, _nested("round(", "item.customs_value", ", 1)")),
    "abs": (T, _nested("abs(", "item.net_mass", " - 1)")),
    "if": (T, _nested("if item.net_mass > 1 then ", "10", " else item.packages")),
    "not and": (_indicator("not (", "item.net_mass > 1", " and item.packages > 1)"),
                _fixed("50 * a")),
    "or and": (_indicator("(", "item.origin == \"CN\"", " or item.packages > 1) and a0"),
               _fixed("50 * a + 1")),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DEEP))
@pytest.mark.parametrize(
    "item",
    [ITEM, {"net_mass": 2.5, "customs_value": 1e308, "packages": 0, "origin": "CN"}, {}],
    ids=["values", "large", "missing"],
)
def test_expressions_at_the_depth_limit_equal_the_reference(
    case: str, item: dict[str, Any]
) -> None:
    source = _at_the_limit(case)
    engine = Engine.load(sources={"deep.rp": source}, allow_drafts=True)
    parsed = parse_source(source, "deep.rp").source
    assert parsed is not None
    decl = unchecked_declaration({"items": [item]})
    expected = reference_score([parsed], decl, DAY, explain=True)
    assert engine.score(decl, DAY, explain=True) == expected
    assert engine.score(decl, DAY).fired == reference_score([parsed], decl, DAY).fired


def test_wide_expressions_accepted_by_check_equal_the_reference() -> None:
    cases = [
        ("a: true", " + ".join(_operands(102))),
        ("a: " + " and ".join(f"{f} > 0" for f in _operands(202)), "100 * a"),
        ("a: " + "not " * 97 + "item.net_mass > 0", "100 * a"),
        ("a: true", "-" * 97 + "item.net_mass + 100"),
    ]
    for indicators, degree in cases:
        source = _source(indicators, degree)
        engine = Engine.load(sources={"wide.rp": source}, allow_drafts=True)
        parsed = parse_source(source, "wide.rp").source
        assert parsed is not None
        for item in (ITEM, {}, {**ITEM, "packages": 0}):
            decl = unchecked_declaration({"items": [item]})
            expected = reference_score([parsed], decl, DAY, explain=True)
            assert engine.score(decl, DAY, explain=True) == expected


def test_deeper_than_the_limit_is_a_located_check_error() -> None:
    for indicators, degree in (
        ("a: " + "not " * 200 + "item.net_mass > 0", "100 * a"),
        ("a: true", "-" * 100 + "item.net_mass + 100"),
    ):
        with pytest.raises(ProfileError) as caught:
            Engine.load(sources={"deep.rp": _source(indicators, degree)})
        assert "deep.rp:" in str(caught.value) and "RE601" in str(caught.value)
