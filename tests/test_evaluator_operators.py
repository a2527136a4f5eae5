"""Boundary values of every operator and of thresholds, through real profile text.

Each case is a condition and a goods item (or header); the profile fires exactly when the
condition is true. Values sit on the literal, just above, just below, missing, empty, Unicode.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from riskengine.evaluator import Engine

DAY = dt.date(2024, 3, 1)
MISSING = object()


def engine_for(condition: str, *, extra: str = "", degree: str = "100 * x") -> Engine:
    source = f"""
profile draft "boundary" {{
    {extra}
    indicators {{ x: {condition} }}
    degree = {degree}
    controls {{ 102 "Documentary check" mandatory from 100 }}
}}
"""
    return Engine.load(sources={"boundary.rp": source}, allow_drafts=True)


def holds(condition: str, item: dict[str, Any] | None = None, **header: Any) -> bool:
    """Whether the condition is true on a one-item declaration (the profile fires)."""
    raw: dict[str, Any] = dict(header)
    if item is not None:
        raw["items"] = [{k: v for k, v in item.items() if v is not MISSING}]
    result = engine_for(condition).score(raw, DAY)
    return bool(result.fired)


NUMBER_CASES = [
    # (operator, value on the item, expected) against the literal 12.5
    ("==", 12.5, True), ("==", 12.5001, False), ("==", 12.4999, False),
    ("!=", 12.5, False), ("!=", 12.5001, True), ("!=", 12.4999, True),
    ("<", 12.5, False), ("<", 12.5001, False), ("<", 12.4999, True),
    ("<=", 12.5, True), ("<=", 12.5001, False), ("<=", 12.4999, True),
    (">", 12.5, False), (">", 12.5001, True), (">", 12.4999, False),
    (">=", 12.5, True), (">=", 12.5001, True), (">=", 12.4999, False),
]  # fmt: skip


@pytest.mark.parametrize(("op", "value", "expected"), NUMBER_CASES)
def test_number_comparisons_at_the_boundary(op: str, value: float, expected: bool) -> None:
    assert holds(f"item.net_mass {op} 12.50", {"net_mass": value}) is expected


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_every_comparison_with_a_missing_value_is_false(op: str) -> None:
    assert holds(f"item.net_mass {op} 12.5", {"net_mass": MISSING}) is False
    assert holds(f"item.net_mass {op} 12.5", {"net_mass": None}) is False
    assert holds(f'item.origin {op} "CN"', {"origin": MISSING}) is False


def test_not_of_a_comparison_with_a_missing_value_is_true() -> None:
    assert holds("not (item.net_mass == 1)", {"net_mass": MISSING}) is True
    assert holds("item.net_mass != 1", {"net_mass": MISSING}) is False


def test_integer_and_decimal_literal_compare_as_numbers() -> None:
    assert holds("item.packages == 3", {"packages": 3}) is True
    assert holds("item.packages == 3.0", {"packages": 3}) is True
    assert holds("item.net_mass == 12.50", {"net_mass": "12.5"}) is True  # numeric text input


STRING_CASES = [
    ("==", "CN", True), ("==", "cn", False), ("==", "CN ", False), ("==", "", False),
    ("!=", "CN", False), ("!=", "", True),
    ("<", "CM", True), ("<", "CN", False), ("<", "CO", False),
    (">=", "CN", True), (">=", "CNA", True), (">=", "CM", False),
]  # fmt: skip


@pytest.mark.parametrize(("op", "value", "expected"), STRING_CASES)
def test_code_comparisons_are_exact_and_case_sensitive(op: str, value: str, expected: bool) -> None:
    assert holds(f'item.origin {op} "CN"', {"origin": value}) is expected


def test_empty_string_is_a_value_not_missing() -> None:
    assert holds('item.origin == ""', {"origin": ""}) is True
    assert holds("item.origin is missing", {"origin": ""}) is False
    assert holds("item.origin is not missing", {"origin": ""}) is True
    assert holds('item.origin in ("", "CN")', {"origin": ""}) is True
    assert holds('item.hs_code starts with ("")', {"hs_code": ""}) is True


def test_unicode_compares_by_code_point() -> None:
    assert holds('item.description == "Взуття"', {"description": "Взуття"}) is True
    assert holds('item.description == "Взуття"', {"description": "взуття"}) is False
    # "é" precomposed (U+00E9) and "e" + combining accent are different strings
    assert holds('item.description == "é"', {"description": "e\u0301"}) is False
    assert holds('item.description > "z"', {"description": "é"}) is True  # U+00E9 > U+007A


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CN", True), ("VN", True), ("cn", False), ("", False), ("CNN", False), (MISSING, False)],
)
def test_in_list(value: Any, expected: bool) -> None:
    assert holds('item.origin in ("CN", "VN")', {"origin": value}) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CN", False), ("VN", False), ("cn", True), ("", True), (MISSING, False)],
)
def test_not_in_list_is_false_when_missing(value: Any, expected: bool) -> None:
    assert holds('item.origin not in ("CN", "VN")', {"origin": value}) is expected


def test_in_a_list_of_numbers() -> None:
    assert holds("item.packages in (1, 2.5)", {"packages": 1}) is True
    assert holds("item.packages in (1, 2.5)", {"packages": 2.5}) is True
    assert holds("item.packages in (1, 2.5)", {"packages": 2.5001}) is False


def test_in_a_named_list() -> None:
    source = """
list origins = ("CN", "VN")
profile draft "named" {
    indicators { x: item.origin in origins }
    degree = 100 * x
    controls { 102 "Documentary check" mandatory from 100 }
}
"""
    engine = Engine.load(sources={"named.rp": source}, allow_drafts=True)
    assert engine.score({"items": [{"origin": "VN"}]}, DAY).fired
    assert not engine.score({"items": [{"origin": "UA"}]}, DAY).fired


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("6403", True), ("6403990000", True), ("640", False), ("6405", False),
        ("", False), ("x6403", False), (MISSING, False), ("6404", True),
    ],
)  # fmt: skip
def test_starts_with(value: Any, expected: bool) -> None:
    assert holds('item.hs_code starts with ("6403", "6404")', {"hs_code": value}) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, True), (20, True), (15, True), (9.9999, False), (20.0001, False), (MISSING, False)],
)
def test_between_is_inclusive(value: Any, expected: bool) -> None:
    assert holds("item.net_mass between 10 and 20", {"net_mass": value}) is expected


def test_between_with_a_missing_bound_is_false() -> None:
    cond = "item.net_mass between 10 and item.gross_mass"
    assert holds(cond, {"net_mass": 15}) is False
    assert holds(cond, {"net_mass": 15, "gross_mass": 15}) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [("boots", True), ("boot", True), ("BOOTS", True), ("boots!", False), ("", False),
     ("a boot", False), (MISSING, False)],
)  # fmt: skip
def test_matches_is_a_full_match(value: Any, expected: bool) -> None:
    assert holds('item.description matches "(?i)boots?"', {"description": value}) is expected


def test_matches_unicode() -> None:
    assert holds('item.description matches "взуття.*"', {"description": "взуття шкіряне"})
    assert not holds('item.description matches "взуття.*"', {"description": "Взуття"})


def test_is_missing_and_is_not_missing() -> None:
    assert holds("item.net_mass is missing", {"net_mass": MISSING}) is True
    assert holds("item.net_mass is missing", {"net_mass": None}) is True
    assert holds("item.net_mass is missing", {"net_mass": 0}) is False
    assert holds("item.net_mass is not missing", {"net_mass": 0}) is True


def test_arithmetic_with_a_missing_operand_is_missing() -> None:
    assert holds("item.customs_value / item.net_mass < 10", {"customs_value": 50}) is False
    assert holds("(item.customs_value / item.net_mass) is missing", {"customs_value": 50})
    assert holds("item.net_mass + 1 is missing", {}) is True


def test_division_by_zero_is_missing() -> None:
    item = {"customs_value": 50, "net_mass": 0}
    assert holds("item.customs_value / item.net_mass < 10", item) is False
    assert holds("item.customs_value / item.net_mass >= 10", item) is False
    assert holds("(item.customs_value / item.net_mass) is missing", item) is True


def test_division_boundary() -> None:
    # 125 / 10 = 12.5 exactly: < 12.5 is false, <= 12.5 is true
    item = {"customs_value": 125, "net_mass": 10}
    assert holds("item.customs_value / item.net_mass < 12.5", item) is False
    assert holds("item.customs_value / item.net_mass <= 12.5", item) is True


def test_functions_with_a_missing_argument_are_missing() -> None:
    for call in ("min(item.net_mass, 5)", "max(item.net_mass, 5)", "abs(item.net_mass)",
                 "round(item.net_mass)"):  # fmt: skip
        assert holds(f"{call} is missing", {}) is True, call
        assert holds(f"{call} >= -1000", {}) is False, call


def test_functions() -> None:
    assert holds("min(item.net_mass, 5) == 3", {"net_mass": 3})
    assert holds("max(item.net_mass, 5) == 5", {"net_mass": 3})
    assert holds("abs(item.net_mass - 6) == 3", {"net_mass": 3})  # masses are never negative
    assert holds("round(item.net_mass) == 3", {"net_mass": 2.5})  # half away from zero
    assert holds("round(item.net_mass - 5) == -3", {"net_mass": 2.5})
    assert holds("round(item.net_mass, 1) == 2.5", {"net_mass": 2.45})
    assert holds("round(item.net_mass) == 2", {"net_mass": 2.4999})


def test_boolean_field_as_a_condition_missing_is_false() -> None:
    assert holds("declaration.declarant.aeo", {}, declarant={"aeo": True}) is True
    assert holds("declaration.declarant.aeo", {}, declarant={"aeo": False}) is False
    assert holds("declaration.declarant.aeo", {}) is False
    assert holds("not declaration.declarant.aeo", {}) is True


def test_unless_with_a_missing_operand_lets_the_indicator_stand() -> None:
    cond = 'item.origin == "CN" unless item.preference == "GSP"'
    assert holds(cond, {"origin": "CN"}) is True
    assert holds(cond, {"origin": "CN", "preference": "GSP"}) is False
    assert holds(cond, {"origin": "CN", "preference": "MFN"}) is True


def test_dates_compare_with_dates() -> None:
    cond = "declaration.date >= 2024-03-01"
    assert holds(cond, {}, date="2024-03-01") is True
    assert holds(cond, {}, date="2024-02-29") is False
    assert holds(cond, {}, date="2024-03-02") is True
    assert holds(cond, {}) is False


def test_and_or_with_missing() -> None:
    assert holds('item.net_mass > 1 or item.origin == "CN"', {"origin": "CN"}) is True
    assert holds('item.net_mass > 1 and item.origin == "CN"', {"origin": "CN"}) is False


# ------------------------------------------------------------------------------ thresholds


def fired_controls(degree: str, item: dict[str, Any]) -> list[str]:
    source = f"""
profile draft "thresholds" {{
    degree = {degree}
    controls {{
        102 "Documentary check"   mandatory    from 30
        201 "Physical inspection" mandatory    from 70.5
        301 "Laboratory sample"   if necessary from 100
    }}
}}
"""
    result = Engine.load(sources={"t.rp": source}, allow_drafts=True).score({"items": [item]}, DAY)
    return [c.code for c in result.controls]


@pytest.mark.parametrize(
    ("value", "codes"),
    [
        (30, ["102"]), (29.9999, []), (70.5, ["102", "201"]), (70.4999, ["102"]),
        (100, ["102", "201", "301"]), (99.9999, ["102", "201"]), (0, []),
    ],
)  # fmt: skip
def test_degree_exactly_at_a_threshold_fires(value: float, codes: list[str]) -> None:
    assert fired_controls("item.net_mass", {"net_mass": value}) == codes


def test_degree_is_clamped_to_0_100() -> None:
    assert fired_controls("item.net_mass", {"net_mass": 250}) == ["102", "201", "301"]
    assert fired_controls("item.net_mass - 1000", {"net_mass": 250}) == []


def test_missing_degree_is_zero() -> None:
    source = """
profile draft "zero" {
    degree = item.net_mass
    controls { 102 "Documentary check" mandatory from 0 }
}
"""
    result = Engine.load(sources={"z.rp": source}, allow_drafts=True).score(
        {"items": [{}]}, DAY, explain=True
    )
    (fired,) = result.fired
    assert fired.degree == 0.0
    assert fired.explanation is not None
    item = fired.explanation.items[0]
    assert item.degree_value is None
    assert item.missing == ("item.net_mass",)


def test_booleans_count_one_and_zero_in_the_degree() -> None:
    source = """
profile draft "bools" {
    indicators { a: item.origin == "CN"  b: item.net_mass > 10 }
    degree = 40 * a + 30 * b + 30 * (item.packages > 2)
    controls { 102 "Documentary check" mandatory from 70 }
}
"""
    engine = Engine.load(sources={"b.rp": source}, allow_drafts=True)
    result = engine.score({"items": [{"origin": "CN", "net_mass": 11}]}, DAY)
    assert [f.degree for f in result.fired] == [70.0]
    result = engine.score({"items": [{"origin": "CN", "packages": 3}]}, DAY)
    assert [f.degree for f in result.fired] == [70.0]
    assert not engine.score({"items": [{"origin": "CN"}]}, DAY).fired


def test_if_with_a_missing_test_takes_the_else_branch() -> None:
    assert fired_controls("if item.net_mass > 1 then 100 else 30", {}) == ["102"]
    assert fired_controls("if item.net_mass > 1 then 100 else 30", {"net_mass": 2}) == [
        "102",
        "201",
        "301",
    ]
