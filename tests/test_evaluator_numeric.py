"""The numeric rule in the evaluator: a non-finite result of arithmetic is missing.

Overflow (``1e308 * 10``, ``1e308 / 0.1``) behaves like a division by zero, in the fast path and
in the explaining path, and the explanation says why the degree is missing. Number literals
beyond the float range never reach the generated source as a bare ``inf``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.evaluator import Engine, ProfileSet
from riskengine.evaluator.compiled import CompiledProfile
from riskengine.evaluator.explain import ARITHMETIC_MISSING
from riskengine.semantics.limits import MAX_NUMBER_INTEGER_DIGITS
from riskengine.syntax import parse_source
from tests import eval_strategies
from tests.eval_strategies import AS_OF, declarations, profile_files, unchecked_declaration
from tests.reference_interpreter import reference_score

DAY = dt.date(2024, 3, 1)
BIG = {"customs_value": 1e308, "net_mass": 0.1}


def _profile(condition: str, degree: str = "100 * x") -> str:
    return f"""
profile draft "numeric" {{
    indicators {{ x: {condition} }}
    degree = {degree}
    controls {{ 102 "Documentary check" mandatory from 100 }}
}}
"""


def _holds(condition: str, item: dict[str, Any]) -> bool:
    engine = Engine.load(sources={"n.rp": _profile(condition)}, allow_drafts=True)
    decl = unchecked_declaration({"items": [item]})
    fast = bool(engine.score(decl, DAY).fired)
    explained = bool(engine.score(decl, DAY, explain=True).fired)
    assert fast == explained
    return fast


@pytest.mark.parametrize(
    "expression",
    [
        "item.customs_value / item.net_mass",  # 1e309
        "item.customs_value * 10",
        "item.customs_value + item.customs_value",
        "-item.customs_value - item.customs_value",
        "(item.customs_value * 10) - (item.customs_value * 10)",  # inf - inf = nan
    ],
)
def test_an_overflow_is_missing(expression: str) -> None:
    assert _holds(f"({expression}) is missing", BIG)
    assert not _holds(f"{expression} > 0", BIG)
    assert not _holds(f"{expression} < 0", BIG)
    assert not _holds(f"{expression} == {expression}", BIG)
    assert _holds(f"not ({expression} > 0)", BIG)  # a comparison with missing is false
    # against a literal on either side, with every operator (the generator folds the test of
    # the numeric rule into such comparisons)
    for test in ("{} >= 0", "{} <= 0", "0 < {}", "0 > {}", "0 <= {}", "0 >= {}", "{} == 1",
                 "1 == {}", "{} != 0", "0 != {}"):  # fmt: skip
        assert not _holds(test.format(expression), BIG), test


def test_comparisons_of_arithmetic_with_literals_at_the_limit() -> None:
    item = {"customs_value": 1e308, "net_mass": 1.0}
    for test, expected in (
        ("item.customs_value / item.net_mass > 1", True),
        ("1 < item.customs_value / item.net_mass", True),
        ("item.customs_value / item.net_mass < 1", False),
        ("-1 > -item.customs_value / item.net_mass", True),
        ("item.customs_value / item.net_mass == 1", False),
        ("item.customs_value * item.net_mass != 1", True),
        ("item.customs_value / item.net_mass >= 100000", True),
        ("item.net_mass / item.net_mass <= 1", True),
        ("item.net_mass / item.net_mass == 1", True),
        ("1 >= item.net_mass / item.net_mass", True),
    ):
        assert _holds(test, item) is expected, test


def test_values_near_the_limit_stay_numbers() -> None:
    largest = "9" * MAX_NUMBER_INTEGER_DIGITS  # the largest literal `check` accepts (RE602)
    assert _holds(f"item.customs_value * 1.7 > {largest}", {"customs_value": 1e308})
    assert _holds("item.customs_value / item.net_mass > 1", {"customs_value": 1e308, "net_mass": 1})
    assert _holds(
        "item.customs_value / item.net_mass == 1", {"customs_value": 1.4, "net_mass": 1.4}
    )


def test_an_overflowing_degree_is_zero_and_explained() -> None:
    source = """
profile draft "overflow" {
    degree = item.customs_value * 10 + 5
    controls { 102 "Documentary check" mandatory from 0 }
}
"""
    engine = Engine.load(sources={"o.rp": source}, allow_drafts=True)
    result = engine.score(unchecked_declaration({"items": [BIG]}), DAY, explain=True)
    (fired,) = result.fired
    assert fired.degree == 0.0
    assert engine.score(unchecked_declaration({"items": [BIG]}), DAY).fired[0].degree == 0.0
    item = fired.explanation.items[0]  # type: ignore[union-attr]
    assert item.degree_value is None and item.missing == ()
    assert f"degree missing ({ARITHMETIC_MISSING}) → 0" in result.explanations[0].render()
    # the same as the reference interpreter, explanation included
    sf = parse_source(source, "o.rp").source
    assert sf is not None
    expected = reference_score([sf], unchecked_declaration({"items": [BIG]}), DAY, explain=True)
    assert result == expected


def test_the_sum_of_degree_terms_overflows_to_missing_in_the_explanation() -> None:
    source = """
profile draft "terms" {
    degree = item.customs_value + item.customs_value - 100
    controls { 102 "Documentary check" mandatory from 0 }
}
"""
    engine = Engine.load(sources={"t.rp": source}, allow_drafts=True)
    result = engine.score(unchecked_declaration({"items": [BIG]}), DAY, explain=True)
    item = result.explanations[0].items[0]
    assert [t.value for t in item.terms] == [1e308, 1e308, 100.0]
    assert item.degree_value is None and item.degree == 0.0
    assert engine.score(unchecked_declaration({"items": [BIG]}), DAY).fired[0].degree == 0.0


def test_a_literal_beyond_the_float_range_never_reaches_the_source_as_inf() -> None:
    # `check` rejects such a literal; the code generator must still produce valid code
    huge = "1" + "0" * 320
    parsed = parse_source(_profile(f"item.net_mass < {huge}", f"{huge} * x - {huge}"), "h.rp")
    assert parsed.source is not None
    profile = parsed.source.profiles[0]
    compiled = CompiledProfile(profile, file="h.rp")
    source = compiled.default.generated.source
    assert "inf" not in source.replace("float('inf')", "")
    fired = compiled.evaluate({"items": [{"net_mass": 1}]}, DAY)
    # inf * true - inf is nan: missing, so the degree is 0 and the control (from 100) does not apply
    assert fired is None
    explained = compiled.evaluate({"items": [{"net_mass": 1}]}, DAY, explain=True)
    assert explained is None


def test_round_with_extreme_digits_never_raises() -> None:
    for call, expected in (
        ("round(item.net_mass, 400)", 1.5),
        ("round(item.net_mass, -400)", 0.0),
        ("round(item.net_mass, item.packages)", 1.5),
    ):
        holds = _holds(f"{call} == {expected}", {"net_mass": 1.5, "packages": 1000})
        assert holds, call


# ------------------------------------------------------------------------------ differential

EXTREMES = (1e308, -1e308, 1.7976931348623157e308, 1e-300, -1e-300, 0.0, 0.1, 1.4, -3.0, 12.5)


def _extreme_number(draw: st.DrawFn) -> Any:
    return draw(st.sampled_from(EXTREMES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=profile_files(), data=st.data())
def test_extreme_values_equal_the_reference(files: list[Any], data: st.DataObject) -> None:
    """Random profiles on declarations whose numbers sit at the float range's edges: the
    evaluator (fast and explaining paths) equals the reference interpreter."""
    as_of: dt.date = data.draw(st.sampled_from(AS_OF))
    engine = Engine(ProfileSet.compile(files))
    with mock.patch.object(eval_strategies, "_number_value", _extreme_number):
        for _ in range(3):
            decl = data.draw(declarations())
            assert engine.score(decl, as_of) == reference_score(files, decl, as_of)
            explained = reference_score(files, decl, as_of, explain=True)
            assert engine.score(decl, as_of, explain=True) == explained
