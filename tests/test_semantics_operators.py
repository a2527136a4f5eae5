"""The operator table and the typed annotation pass (riskengine.semantics)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from riskengine import model as m
from riskengine.catalogue import catalogue_with
from riskengine.checks import check_sources
from riskengine.evaluator import Engine
from riskengine.semantics import operators as ops
from riskengine.semantics.numbers import finite, round_half_away
from riskengine.semantics.types import BOOLEAN, DATE, NUMBER, STRING, annotate

NAMES = [
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "date_diff",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "not_in",
    "starts_with",
    "between",
    "matches",
    "is_missing",
    "is_not_missing",
    "min",
    "max",
    "abs",
    "round",
    "if",
    "and",
    "or",
    "not",
    "as_number",
]


def test_every_operator_of_the_language_has_one_entry_with_a_stable_name() -> None:
    assert [op.name for op in ops.OPERATORS] == NAMES
    for name in NAMES:
        assert name in (ops.__doc__ or ""), f"{name} is not listed in the module docstring"
        assert ops.by_name(name).sql is not None  # its SQL construction (test below)
    assert list(ops.FUNCTIONS) == list(m.FUNCTIONS)


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("add", (1.5, 2.0), 3.5),
        ("add", (None, 2.0), None),
        ("add", (1e308, 1e308), None),  # overflow is missing
        ("sub", (1.0, None), None),
        ("mul", (1e308, 10.0), None),
        ("mul", (True, 40.0), 40.0),
        ("div", (1.0, 0.0), None),
        ("div", (1e308, 0.1), None),
        ("div", (1.4, 1.4), 1.0),
        ("neg", (None,), None),
        ("neg", (2.0,), -2.0),
        ("date_diff", (dt.date(2024, 3, 1), dt.date(2024, 1, 1)), 60),
        ("date_diff", (dt.date(2024, 1, 1), dt.date(2024, 3, 1)), -60),
        ("date_diff", (None, dt.date(2024, 3, 1)), None),
        ("eq", (None, None), False),
        ("ne", ("CN", None), False),
        ("lt", (1.0, 2.0), True),
        ("ge", (2.0, 2.0), True),
        ("in", ("CN", frozenset({"CN"})), True),
        ("in", (None, frozenset({"CN"})), False),
        ("not_in", (None, frozenset({"CN"})), False),
        ("not_in", ("VN", frozenset({"CN"})), True),
        ("starts_with", ("6403990000", ("6404", "6403")), True),
        ("starts_with", (None, ("64",)), False),
        ("between", (5.0, 5.0, 6.0), True),
        ("between", (5.0, None, 6.0), False),
        ("matches", ("UA/2024", "UA/20[0-9]{2}"), True),
        ("matches", ("xUA/2024", "UA/20[0-9]{2}"), False),
        ("is_missing", (None,), True),
        ("is_not_missing", ("",), True),
        ("min", (3.0, 1.0, 2.0), 1.0),
        ("max", (3.0, None), None),
        ("abs", (-2.5,), 2.5),
        ("round", (2.5,), 3.0),
        ("round", (-2.5,), -3.0),
        ("round", (1.25, 1), 1.3),
        ("round", (None, 1), None),
        ("if", (True, 1.0, 2.0), 1.0),
        ("if", (False, 1.0, 2.0), 2.0),
        ("and", (True, False), False),
        ("or", (False, True), True),
        ("not", (False,), True),
        ("as_number", (True,), 1.0),
        ("as_number", (False,), 0.0),
    ],
)
def test_reference_callables_follow_the_missing_value_rules(
    name: str, args: tuple[object, ...], expected: object
) -> None:
    assert ops.by_name(name).python(*args) == expected


def test_round_is_half_away_from_zero_and_total() -> None:
    assert [round_half_away(x) for x in (0.5, 1.5, 2.5, -0.5, -1.5)] == [1, 2, 3, -1, -2]
    assert round_half_away(125.0, -1) == 130.0
    # digits beyond the float range of 10**n: exact, never an OverflowError / ZeroDivisionError
    assert round_half_away(1.5, 400) == 1.5
    assert round_half_away(1e-320, 309) == 0.0
    assert round_half_away(1e-320, 330) == 1e-320
    assert round_half_away(7.0, -5000) == 0.0
    assert round_half_away(1.7e308, -308) is None  # 2e308 overflows: missing


def test_finite_rule() -> None:
    assert finite(1.0) == 1.0
    assert finite(None) is None
    assert finite(math.inf) is None
    assert finite(-math.inf) is None
    assert finite(math.nan) is None


def test_checks_take_function_arity_from_the_table() -> None:
    src = (
        'profile draft "x" { degree = round(1, 2, 3) + abs(1, 2) + mean(1)\n'
        ' controls { 102 "D" mandatory from 1 } }'
    )
    messages = [d.message for d in check_sources({"a.rp": src}).errors]
    assert "`round` takes one or two arguments (value, digits), not 3" in messages
    assert "`abs` takes one argument, not 2" in messages
    assert "unknown function `mean` (the functions are min, max, abs, round)" in messages


PROFILE = """
profile draft "typed" {
    indicators {
        late: declaration.arrival_date - declaration.date > 30
        shoes: item.hs_code starts with ("6403")
    }
    degree = 40 * shoes + round(item.customs_value / item.net_mass) + (if late then 1 else 0)
    controls { 102 "Documentary check" mandatory from 40 }
}
"""


def _catalogue(tmp_path: Path) -> object:
    toml = tmp_path / "fields.toml"
    toml.write_text('[[field]]\npath = "declaration.arrival_date"\ntype = "date"\n')
    return catalogue_with(toml)


def test_annotation_gives_every_node_its_type_with_the_user_catalogue(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    checked = check_sources({"t.rp": PROFILE}, cat)  # type: ignore[arg-type]
    assert checked.ok, checked.render()
    profile = checked.profiles[0]
    types = annotate(profile, cat)  # type: ignore[arg-type]
    late = profile.indicators[0].condition
    assert isinstance(late, m.Compare) and isinstance(late.left, m.Arith)
    assert types.of(late) is BOOLEAN
    assert types.of(late.left) is NUMBER  # a number of days
    assert types.is_date(late.left.left) and types.is_date(late.left.right)
    assert types.of(profile.indicators[1].condition.operand) is STRING  # type: ignore[union-attr]
    assert profile.degree is not None and types.of(profile.degree) is NUMBER
    assert types.date_fields == {"declaration.arrival_date", "declaration.date"}
    assert types.text_fields == {"item.hs_code"}
    # the same from the evaluator's view of the catalogue (path → type name)
    as_map = {f.path: f.type.value for f in cat}  # type: ignore[attr-defined]
    assert annotate(profile, as_map).date_fields == types.date_fields
    # an expression built later (a fill's control) is annotated on demand
    extra = m.Compare(">", m.FieldRef("item.net_mass"), m.NumberLit(1))  # type: ignore[arg-type]
    assert types.of(extra) is BOOLEAN and types.of(extra.left) is NUMBER
    assert annotate(profile).of(late.left.left) is not DATE  # unknown without the catalogue


def test_user_catalogue_date_difference_is_days_in_the_evaluator(tmp_path: Path) -> None:
    source = """
profile draft "late" {
    indicators { late: declaration.arrival_date - declaration.date > 30 }
    degree = 100 * late
    controls { 102 "Documentary check" mandatory from 100 }
}
"""
    engine = Engine.load(
        sources={"late.rp": source},
        catalogue=_catalogue(tmp_path),  # type: ignore[arg-type]
        allow_drafts=True,
    )
    day = dt.date(2024, 1, 1)
    late = {"date": "2024-01-01", "arrival_date": "2024-01-31", "items": [{}]}
    assert not engine.score(late, day).fired  # 30 days: not > 30
    late["arrival_date"] = "2024-02-01"
    assert [f.key for f in engine.score(late, day).fired] == ["late"]


def test_annotation_lists_the_history_subject_and_regional_fields() -> None:
    source = """
profile draft "history" {
    filling regional by "Customs value unit"
    regional { ceiling: number }
    indicators { cheap: item.customs_value / item.net_mass < region.ceiling }
    degree = 50 * cheap + negative_history
    controls { 102 "Documentary check" mandatory from 40 }
    history per declaration.declarant.id, item.hs_code[:4] over 365 days {
        negative max 30 { 0201: 1.0 }
    }
}
"""
    checked = check_sources({"h.rp": source})
    profile = checked.profiles[0]
    types = annotate(profile)
    assert types.text_fields == {"declaration.declarant.id", "item.hs_code"}
    assert types.field_types["region.ceiling"] is NUMBER
    assert types.field_types["item.customs_value"] is NUMBER
    assert types.date_fields == frozenset()


def test_every_operator_has_its_sql_construction() -> None:
    """The table names each entry's SQL construction, and the SQL side has it: adding a
    function without its SQL fails here, not in a backtest."""
    import sqlalchemy as sa

    from riskengine.semantics.sql import SQL_OPERATORS

    compiler_built = {"and_", "or_", "not_", "case", "regex"}
    for op in ops.OPERATORS:
        assert op.sql is not None, op.name
        assert op.sql in SQL_OPERATORS or op.sql in compiler_built, (op.name, op.sql)
    # the per-dialect constructions compile on every engine the backtests run on
    x, y = sa.column("x"), sa.column("y")
    for name in ("+", "-", "*", "/", "round", "days_between", "min", "max", "clamp"):
        built = (
            SQL_OPERATORS[name](x, y)
            if name not in ("round", "clamp")
            else (SQL_OPERATORS[name](x))
        )
        for dialect in ("sqlite", "postgresql", "duckdb"):
            sql = _compiled_sql(built, dialect)
            assert "x" in sql, (name, dialect, sql)


def _compiled_sql(element: object, dialect: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite

    if dialect == "duckdb":
        import duckdb_engine

        d: sa.Dialect = duckdb_engine.Dialect()
    else:
        d = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect]
    return str(element.compile(dialect=d))  # type: ignore[attr-defined]
