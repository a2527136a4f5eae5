"""The SQL backend on SQLite: hand-computed results for the kitchen-sink profile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

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
