"""The SQL backend on SQLite: hand-computed results for the kitchen-sink profile."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine.semantics import sql as ops
from riskengine.sql import SqlScope, SqlUnsupported, compile_profile
from riskengine.syntax import parse

KITCHEN_SINK = Path(__file__).parent / "data" / "kitchen_sink.rp"
FIELDS = {
    "item.hs_code": sa.String,
    "item.origin": sa.String,
    "item.customs_value": sa.Float,
    "item.net_mass": sa.Float,
    "item.preference": sa.String,
    "item.gross_mass": sa.Float,
    "declaration.declarant.aeo": sa.Boolean,
}


def _col(path: str) -> str:
    return path.replace(".", "_")


@pytest.fixture()
def sqlite_rows() -> tuple[sa.Engine, sa.Table]:
    md = sa.MetaData()
    table = sa.Table(
        "rows",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        *[sa.Column(_col(k), v) for k, v in FIELDS.items()],
    )
    engine = sa.create_engine("sqlite://")

    @sa.event.listens_for(engine, "connect")
    def _register(dbapi: Any, _rec: Any) -> None:
        dbapi.create_function(
            "re_fullmatch", 2, lambda p, v: None if v is None else int(bool(re.fullmatch(p, v)))
        )

    md.create_all(engine)
    base = {_col(k): None for k in FIELDS}
    rows = [
        # footwear from CN at 10.0/kg: every indicator true
        base | {"id": 1, "item_hs_code": "6403990000", "item_origin": "CN",
                "item_customs_value": 100.0, "item_net_mass": 10.0,
                "declaration_declarant_aeo": False},
        # net mass 0: value / mass is missing, so `cheap` is false and `not cheap` true
        base | {"id": 2, "item_hs_code": "6403990000", "item_origin": "CN",
                "item_customs_value": 100.0, "item_net_mass": 0.0, "item_gross_mass": 1.5},
        # nothing known but the AEO flag: the profile exception holds
        base | {"id": 3, "declaration_declarant_aeo": True},
        # exactly at the unit-price boundary: 12.50 is not < 12.50
        base | {"id": 4, "item_hs_code": "6404", "item_origin": "VN",
                "item_customs_value": 125.0, "item_net_mass": 10.0},
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return engine, table


def test_profile_compiles_to_null_safe_sql(sqlite_rows: tuple[sa.Engine, sa.Table]) -> None:
    engine, table = sqlite_rows
    source = parse(KITCHEN_SINK.read_text(encoding="utf-8"), str(KITCHEN_SINK))
    profile = source.profiles[0]
    scope = SqlScope(
        field=lambda path: table.c[_col(path)],
        dialect="sqlite",
        lists={ld.name: ld.values for ld in source.lists},
        negative_history=sa.literal(5.0),
    )
    ps = compile_profile(profile, scope)
    query = sa.select(
        table.c.id,
        ps.degree.label("degree"),
        ps.fires.label("fires"),
        ps.excluded.label("excluded"),
        *[v.label(k) for k, v in ps.indicators.items()],
    ).order_by(table.c.id)
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    # degree = 40*footwear + 30*origin + 30*cheap + negative(5) - positive(0), clamped
    assert got == [
        (1, 100.0, True, False, True, True, True, False),
        (2, 75.0, True, False, True, True, False, True),
        (3, 5.0, False, True, False, False, False, True),
        (4, 75.0, True, False, True, True, False, True),
    ]


def test_region_reference_without_a_fill_is_reported_not_compiled() -> None:
    source = parse(
        'profile "r" { indicators { a: item.net_mass > region.limit } degree = 100 * a '
        'controls { 102 "Doc" mandatory from 50 } }'
    )
    scope = SqlScope(field=lambda path: sa.column(path), dialect="sqlite")
    with pytest.raises(SqlUnsupported, match=r"region\.limit"):
        compile_profile(source.profiles[0], scope)


# --- the numeric rule on every engine ---------------------------------------------------------

DBL_MAX = sys.float_info.max
EDGES = (0.0, 5e-324, -5e-324, 3e-320, 1e-300, -1e-300, 2.2250738585072014e-308, 1e-160, 0.1,
         -0.1, 0.5, 1.0, -1.0, 1.4, 3.0, 4199999.99, 10000.0, 1e150, -1e154, 2.0**512, 1e300,
         1e308, -1e308, DBL_MAX, -DBL_MAX, 2.0**1023, 2.0**969, 2.0**-537, 2.0**-50,
         0.9999999999999999, 1.0000000000000002, None)  # fmt: skip


def _python(op: str, x: float | None, y: float | None) -> float | None:
    """The evaluator's rule: missing in, missing out; /0 and non-finite results are missing."""
    if x is None or y is None or (op == "/" and y == 0):
        return None
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0}[op]
    return value if math.isfinite(value) else None


def test_arithmetic_at_the_limits_of_doubles_is_the_evaluators(engine: sa.Engine) -> None:
    """Every pair of edge values (overflow to infinity, underflow to 0, DBL_MAX, subnormals,
    1.4 / 1.4, 4,199,999.99 / 10,000) through the guarded + - * /, both operands columns, then
    one a literal: exactly Python's double, or missing where Python's result is not finite --
    never an error (PostgreSQL raises on overflow and underflow unless guarded)."""
    md = sa.MetaData()
    t = sa.Table("edge", md, sa.Column("k", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("x", sa.Double), sa.Column("y", sa.Double))  # fmt: skip
    md.create_all(engine)
    pairs = list(itertools.product(EDGES, EDGES))
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"k": k, "x": a, "y": b} for k, (a, b) in enumerate(pairs)])
    wrong = []
    with engine.connect() as conn:
        for op in "+-*/":
            query = sa.select(t.c.k, ops.guarded(op, t.c.x, t.c.y)).order_by(t.c.k)
            for k, got in conn.execute(query):
                if got != _python(op, *pairs[k]):
                    wrong.append((op, pairs[k], got))
            for lit in EDGES:  # a constant operand (PostgreSQL folds constants when planning)
                for left in (False, True):
                    a, b = (ops.number(lit), t.c.x) if left else (t.c.x, ops.number(lit))
                    query = sa.select(t.c.x, ops.guarded(op, a, b)).where(t.c.y == 1.0)
                    for x, got in conn.execute(query):
                        want = _python(op, lit, x) if left else _python(op, x, lit)
                        if got != want:
                            wrong.append((op, (lit, x) if left else (x, lit), got))
    assert wrong == []


def _nested(func: str, depth: int) -> str:
    expr = "item.net_mass"
    for k in range(depth):
        expr = f"round({expr})" if func == "round" else f"{func}({expr}, item.gross_mass - {k})"
    return expr


@pytest.mark.parametrize("func", ["max", "min", "round"])
def test_nested_functions_give_linear_sql(engine: sa.Engine, func: str) -> None:
    """12 nested max / min / round: the SQL stays a few kilobytes on every engine (it was
    28 MB for max on PostgreSQL), and the values are the evaluator's."""
    md = sa.MetaData()
    t = sa.Table("rows", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("m", sa.Double), sa.Column("g", sa.Double))  # fmt: skip
    md.create_all(engine)
    rows = [(1, 7.5, 3.25), (2, None, 1.0), (3, -2.5, 20.0), (4, 0.5, -0.5)]
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"id": i, "m": a, "g": b} for i, a, b in rows])
    text = f'profile "n" {{ degree = {_nested(func, 12)} controls {{ 102 "D" mandatory from 1 }} }}'
    profile = parse(text).profiles[0]
    cols = {"item.net_mass": t.c.m, "item.gross_mass": t.c.g}
    scope = SqlScope(field=lambda path: cols[path], dialect=engine.dialect.name)
    raw = compile_profile(profile, scope).raw_degree
    query = sa.select(t.c.id, raw).order_by(t.c.id)
    size = len(str(query.compile(engine)))
    assert size < 20_000, size
    from riskengine.evaluator import CompiledProfile
    from tests.eval_strategies import unchecked_declaration

    compiled = CompiledProfile(profile)
    with engine.connect() as conn:
        got = [value for _, value in conn.execute(query)]
    for (_, mass, gross), value in zip(rows, got, strict=True):
        item = {k: v for k, v in (("net_mass", mass), ("gross_mass", gross)) if v is not None}
        # -2.5 and -0.5 are below the input rule's minimum: the evaluator is given them as a
        # store (or a bring-your-own table) may hold them
        day = dt.date(2024, 1, 1)
        result = compiled.evaluate(unchecked_declaration({"date": day, "items": [item]}), day)
        expected = _reference_degree(mass, gross, func)
        assert value == expected
        clamped = min(100.0, max(0.0, expected))
        assert (result is not None) == (clamped >= 1)
        assert result is None or float(result.degree) == clamped


def _reference_degree(mass: float | None, gross: float | None, func: str) -> float:
    """The raw degree by hand (a missing degree is 0)."""
    if func == "round":
        return 0.0 if mass is None else _round12(mass)
    if mass is None or gross is None:
        return 0.0
    value = mass
    for k in range(12):
        other = gross - k
        value = max(value, other) if func == "max" else min(value, other)
    return value


def _round12(x: float) -> float:
    from riskengine.evaluator.values import round_half_away

    for _ in range(12):
        x = round_half_away(x)
    return x


def test_sql_scope_reads_the_catalogue_types() -> None:
    """A user catalogue's date field: `a - b` of two dates is a number of days (it compiled
    to a plain difference); text compared with text gets COLLATE "C" on PostgreSQL."""
    from sqlalchemy.dialects import postgresql

    from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue
    from riskengine.semantics.types import field_types

    extra = [
        Field("declaration.arrival_date", FieldType.DATE),
        Field("item.brand", FieldType.STRING),
    ]
    catalogue = default_catalogue().extend(Catalogue({f.path: f for f in extra}))
    profile = parse(
        'profile "c" { indicators { late: declaration.arrival_date - declaration.date > 30 '
        "brand: item.brand < item.description } degree = 60 * late + 40 * brand "
        'controls { 102 "D" mandatory from 50 } }'
    ).profiles[0]
    scope = SqlScope(
        field=lambda path: sa.column(path.replace(".", "_")),
        dialect="postgresql",
        types=field_types(catalogue),
    )
    sql = str(
        sa.select(compile_profile(profile, scope).raw_degree).compile(dialect=postgresql.dialect())
    )
    assert "CAST(declaration_arrival_date AS DATE) - CAST(declaration_date AS DATE)" in sql
    assert 'COLLATE "C"' in sql
