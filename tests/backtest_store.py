"""A small store for the backtest tests: declarations, goods items and control results given as
tuples, so that each test's metrics can be computed by hand from what it wrote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from riskengine.store.schema import build_tables
from riskengine.store.source import StoreSource, native_source

#: (pk, id, date, office)
Decl = tuple[int, str, dt.date, str]
#: (decl_pk, item_no, origin, customs_value, net_mass)
Item = tuple[int, int, str, float, float | None]
#: (pk, decl_pk, procedure, random control, violation found, revenue)
Control = tuple[int, int, str, bool, bool, float | None]


def write_store(
    engine: sa.Engine,
    decls: Sequence[Decl],
    items: Sequence[Item],
    controls: Sequence[Control],
    controls_on: dt.date,
) -> StoreSource:
    """Create the store's tables in ``engine``, write the rows (every control dated
    ``controls_on``) and return the store as a source."""
    tables = build_tables()
    tables.metadata.create_all(engine)
    rows: list[dict[str, Any]] = [
        {"pk": p, "id": i, "date": d, "office": o} for p, i, d, o in decls
    ]
    with engine.begin() as conn:
        conn.execute(tables.declarations.insert(), rows)
        if items:
            conn.execute(
                tables.items.insert(),
                [
                    {"decl_pk": p, "item_no": n, "origin": o, "customs_value": v, "net_mass": w}
                    for p, n, o, v, w in items
                ],
            )
        if controls:
            conn.execute(
                tables.control_results.insert(),
                [
                    {
                        "pk": k,
                        "decl_pk": p,
                        "procedure": c,
                        "random_control": r,
                        "violation_found": v,
                        "revenue": rev,
                        "date": controls_on,
                    }
                    for k, p, c, r, v, rev in controls
                ],
            )
    return native_source(tables)
