"""Release time: hours from lodgement to release (seed 000, AEO KPI 7: release time by corridor).

Reads ``release_times.lodged_at`` and ``released_at`` (revision r0008) of the released
declarations (a clearance outcome with ``completed`` true) dated in the period, optionally of one
corridor. The pairs are
read with SQLAlchemy Core and the hours computed in Python: date arithmetic differs between
SQLite, PostgreSQL and DuckDB, and a median has no portable SQL.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from riskengine.kpi.metrics import PHYSICAL_CODES, Measure, Measures, Scope, in_period
from riskengine.kpi.periods import Period
from riskengine.store.schema import StoreTables

__all__ = ["release_time"]


def release_time(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    """Mean (or median, ``statistic = "median"``) hours from lodgement to release; numerator:
    the declarations with both times, denominator: the released declarations."""
    outcomes, times = tables.outcomes, tables.release_times
    d = tables.declarations
    source: Any = d.join(outcomes, outcomes.c.decl_pk == d.c.pk).outerjoin(
        times, times.c.decl_pk == d.c.pk
    )
    conditions = [*in_period(tables, period, scope.office), outcomes.c.completed.is_(True)]
    corridor = params.get("corridor")
    if corridor is not None:
        cr = tables.control_results
        codes = list(params.get("physical", PHYSICAL_CODES))
        lanes = (
            sa.select(
                cr.c.decl_pk,
                sa.func.max(sa.case((cr.c.procedure.in_(codes), 1), else_=0)).label("physical"),
            )
            .group_by(cr.c.decl_pk)
            .subquery("lanes")
        )
        source = source.outerjoin(lanes, lanes.c.decl_pk == d.c.pk)
        conditions.append(
            lanes.c.physical.is_(None) if corridor == "green"
            else lanes.c.physical == (1 if corridor == "red" else 0)
        )  # fmt: skip
    office = tables.column("declaration.office")
    query = sa.select(office, times.c.lodged_at, times.c.released_at).select_from(source)
    hours: dict[str | None, list[float]] = {}
    released: dict[str | None, int] = {}
    if not scope.each:
        hours[scope.office], released[scope.office] = [], 0
    for where, lodged, done in conn.execute(query.where(*conditions)):
        key = where if scope.each else scope.office
        if key is None and scope.each:
            continue
        released[key] = released.get(key, 0) + 1
        timed = hours.setdefault(key, [])
        if lodged is not None and done is not None:
            timed.append((done - lodged).total_seconds() / 3600)
    measures: Measures = {}
    for key, values in hours.items():
        if not values:
            measures[key] = Measure(None, 0, released[key])
        elif params.get("statistic", "mean") == "median":
            measures[key] = Measure(float(statistics.median(values)), len(values), released[key])
        else:
            measures[key] = Measure(sum(values) / len(values), len(values), released[key])
    return measures
