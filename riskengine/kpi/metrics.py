"""Built-in KPI metrics over the store, and SQL sources run read-only.

Every metric takes a reporting :class:`~riskengine.kpi.periods.Period` (declarations count in the
period of their date, ``declaration.date``), an optional office (``declaration.office``) and the
passport's parameters, and returns a :class:`Measure`. What each one derives from what is in
``docs/kpi.md``; in short:

* the **corridor** (lane) of a declaration is derived from the controls carried out on it
  (``control_results``): red when any control's procedure is a physical one (the evaluator's
  default red codes 201-204, 301, 302, or the passport's ``physical`` list), yellow when it had
  other controls only, green when it had none;
* **released** means a clearance outcome with ``completed`` true;
* the **customs value** of a declaration is the sum of its items' ``customs_value`` (missing = 0);
* a **control** is one controlled declaration: risk-based when a profile ordered it
  (``profile_key`` set, ``random_control`` false), random when ``random_control`` is true; it is a
  hit when any of its controls of that kind found a violation.

All SQL is SQLAlchemy Core with bound parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.diagnostics import RiskEngineError
from riskengine.kpi.periods import Period
from riskengine.store.schema import StoreTables

__all__ = [
    "EMPTY",
    "METRICS",
    "KpiError",
    "Measure",
    "MetricNotAvailable",
    "MetricSpec",
    "Scope",
    "compute_metric",
    "compute_metric_each",
    "in_period",
    "offices",
    "percent",
    "run_sql",
    "wilson",
]

#: Procedure codes of a physical control (the evaluator's default red lane).
PHYSICAL_CODES: tuple[str, ...] = ("201", "202", "203", "204", "301", "302")
#: z for a 95 % two-sided interval.
Z95 = 1.959963984540054


class KpiError(RiskEngineError):
    """A KPI cannot be computed (a failing SQL source, a store without a needed column)."""


class MetricNotAvailable(KpiError):
    """The metric needs data the store does not hold (yet): the KPI is reported, not scored."""


@attrs.frozen
class Measure:
    """An actual value: ``value`` (``None`` when the period has no data), and what it came from:
    ``numerator``/``denominator`` for shares and rates, ``interval`` (Wilson, 95 %) for rates."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    interval: tuple[float, float] | None = None


#: The measure of an office without any declaration in the period.
EMPTY = Measure(None, 0, 0)


def percent(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``, or ``None`` when ``whole`` is 0 (no data)."""
    return 100.0 * part / whole if whole else None


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``hits`` out of ``n`` (as fractions), or ``None`` for n = 0."""
    if n <= 0:
        return None
    p = hits / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# --- parameter checks: each returns a problem or "" -----------------------------------------


def _one_of(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value in options:
            return ""
        return f"must be one of {', '.join(options)}, not {value!r}"

    return check


def _codes(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return ""
    return "must be a non-empty list of procedure codes (strings)"


def _key(value: Any) -> str:
    return "" if isinstance(value, str) and value.strip() else "must be a profile key (a string)"


@attrs.frozen
class Scope:
    """Which declarations a metric counts: one ``office`` (``None``: all), or ``each`` office
    in one grouped query (the keys of the result are then the offices)."""

    office: str | None = None
    each: bool = False


#: What a metric returns: a measure per office (``None``: all offices); an office without any
#: declaration in the period may be absent (:data:`EMPTY`).
Measures = dict[str | None, "Measure"]
Compute = Callable[[sa.Connection, StoreTables, Period, Scope, Mapping[str, Any]], Measures]


@attrs.frozen
class MetricSpec:
    """A built-in metric: its parameters (name → check), the required ones, its unit."""

    compute: Compute
    params: Mapping[str, Callable[[Any], str]]
    required: tuple[str, ...] = ()
    unit: str = "%"
    description: str = ""


# --- building blocks ------------------------------------------------------------------------


def in_period(tables: StoreTables, period: Period, office: str | None) -> list[Any]:
    """The conditions on ``declarations`` of a period (and an office)."""
    conditions: list[Any] = [tables.column("declaration.date").between(period.start, period.end)]
    if office is not None:
        conditions.append(tables.column("declaration.office") == office)
    return conditions


def scoped_rows(
    conn: sa.Connection, tables: StoreTables, query: Any, period: Period, scope: Scope
) -> dict[str | None, Any]:
    """``query`` (aggregates over a FROM with ``declarations``) for the period: one row for the
    scope's office, or one row per office (declarations without an office left out)."""
    query = query.where(*in_period(tables, period, scope.office))
    if not scope.each:
        return {scope.office: conn.execute(query).one()}
    office = tables.column("declaration.office")
    grouped = query.add_columns(office.label("office_key")).group_by(office)
    return {row.office_key: row for row in conn.execute(grouped) if row.office_key is not None}


def _physical(tables: StoreTables, params: Mapping[str, Any]) -> sa.Subquery:
    codes = list(params.get("physical", PHYSICAL_CODES))
    cr = tables.control_results
    return (
        sa.select(
            cr.c.decl_pk,
            sa.func.max(sa.case((cr.c.procedure.in_(codes), 1), else_=0)).label("physical"),
        )
        .group_by(cr.c.decl_pk)
        .subquery("lanes")
    )


def _customs_values(tables: StoreTables) -> sa.Subquery:
    items = tables.items
    value = tables.column("item.customs_value")
    return (
        sa.select(items.c.decl_pk, sa.func.sum(sa.func.coalesce(value, 0.0)).label("value"))
        .group_by(items.c.decl_pk)
        .subquery("values")
    )


def _share(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    source: Any,
    part: Any,
    weight: str,
    where: Sequence[Any] = (),
) -> Measures:
    """100 × Σ weight where ``part`` / Σ weight over the declarations of ``source`` (the
    declarations, joined to what ``part`` and ``where`` read) in the period; the weight is 1 or
    the declaration's customs value."""
    d = tables.declarations
    w: Any = sa.literal(1)
    if weight == "customs_value":
        values = _customs_values(tables)
        source = source.outerjoin(values, values.c.decl_pk == d.c.pk)
        w = sa.func.coalesce(values.c.value, 0.0)
    query = (
        sa.select(
            sa.func.sum(sa.case((part, w), else_=0)).label("part"),
            sa.func.sum(w).label("whole"),
        )
        .select_from(source)
        .where(*where)
    )
    measures: Measures = {}
    for key, row in scoped_rows(conn, tables, query, period, scope).items():
        numerator, whole = float(row.part or 0), float(row.whole or 0)
        measures[key] = Measure(percent(numerator, whole), numerator, whole)
    return measures


# --- the metrics ----------------------------------------------------------------------------


def _released_without_inspection(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    d, outcomes = tables.declarations, tables.outcomes
    lanes = _physical(tables, params)
    source = d.join(outcomes, outcomes.c.decl_pk == d.c.pk).outerjoin(
        lanes, lanes.c.decl_pk == d.c.pk
    )
    part = sa.func.coalesce(lanes.c.physical, 0) == 0
    where = [outcomes.c.completed.is_(True)]
    return _share(conn, tables, period, scope, source, part, "declarations", where)


def _corridor_share(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    d = tables.declarations
    lanes = _physical(tables, params)
    source = d.outerjoin(lanes, lanes.c.decl_pk == d.c.pk)
    corridor = params["corridor"]
    part: Any
    if corridor == "green":
        part = lanes.c.physical.is_(None)
    else:
        part = lanes.c.physical == (1 if corridor == "red" else 0)
    weight = params.get("weight", "declarations")
    return _share(conn, tables, period, scope, source, part, weight)


def _aeo_share(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    part = tables.column("declaration.declarant.aeo").is_(True)
    weight = params.get("weight", "declarations")
    return _share(conn, tables, period, scope, tables.declarations, part, weight)


def _controls(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> dict[str | None, tuple[int, int, float]]:
    """Controlled declarations of the kind, those with a hit, and their revenue."""
    cr = tables.control_results
    kind = params.get("control", "risk")
    conditions: list[Any] = []
    if kind == "random":
        conditions.append(cr.c.random_control.is_(True))
    elif kind == "risk":
        conditions += [cr.c.random_control.is_(False), cr.c.profile_key.is_not(None)]
    if "profile" in params:
        conditions.append(cr.c.profile_key == params["profile"])
    per_declaration = (
        sa.select(
            cr.c.decl_pk,
            sa.func.max(sa.case((cr.c.violation_found.is_(True), 1), else_=0)).label("hit"),
            sa.func.sum(sa.func.coalesce(cr.c.revenue, 0)).label("revenue"),
        )
        .where(*conditions)
        .group_by(cr.c.decl_pk)
        .subquery("controlled")
    )
    d = tables.declarations
    query = sa.select(
        sa.func.count().label("n"),
        sa.func.sum(per_declaration.c.hit).label("hits"),
        sa.func.sum(per_declaration.c.revenue).label("revenue"),
    ).select_from(d.join(per_declaration, per_declaration.c.decl_pk == d.c.pk))
    return {
        key: (int(row.n or 0), int(row.hits or 0), float(row.revenue or 0))
        for key, row in scoped_rows(conn, tables, query, period, scope).items()
    }


def _hit_rate(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    measures: Measures = {}
    for key, (n, hits, _) in _controls(conn, tables, period, scope, params).items():
        interval = wilson(hits, n)
        if interval is None:
            measures[key] = Measure(None, hits, n)
        else:
            low, high = 100.0 * interval[0], 100.0 * interval[1]
            measures[key] = Measure(100.0 * hits / n, hits, n, (low, high))
    return measures


def _revenue_per_control(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    return {
        key: Measure(revenue / n if n else None, revenue, n)
        for key, (n, _, revenue) in _controls(conn, tables, period, scope, params).items()
    }


def _selectivity(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    cr = tables.control_results
    selected = (
        sa.select(cr.c.decl_pk)
        .where(cr.c.random_control.is_(False), cr.c.profile_key.is_not(None))
        .distinct()
    )
    if "profile" in params:
        selected = selected.where(cr.c.profile_key == params["profile"])
    chosen = selected.subquery("selected")
    d = tables.declarations
    query = sa.select(
        sa.func.count(chosen.c.decl_pk).label("part"), sa.func.count().label("whole")
    ).select_from(d.outerjoin(chosen, chosen.c.decl_pk == d.c.pk))
    measures: Measures = {}
    for key, row in scoped_rows(conn, tables, query, period, scope).items():
        part, whole = int(row.part or 0), int(row.whole or 0)
        measures[key] = Measure(percent(part, whole), part, whole)
    return measures


def _reviews_on_time(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    """Reviews due in the period recorded by their due date (riskengine.registry.due.on_time):
    the commission's effectiveness reviews (seed 003 §9.2, §9.5) and the offices' monitoring of
    their fills (§11.5); per office, that office's monitoring."""
    from riskengine.registry.due import on_time

    kinds = str(params.get("reviews", "all"))
    found = on_time(
        conn, period.start, period.end, kinds=kinds, office=scope.office, each=scope.each
    )
    measures: Measures = {}
    for key, (done, due) in found.items():
        measures[key] = Measure(percent(done, due), done, due)
    return measures


def _release_time(
    conn: sa.Connection,
    tables: StoreTables,
    period: Period,
    scope: Scope,
    params: Mapping[str, Any],
) -> Measures:
    from riskengine.kpi.release import release_time

    return release_time(conn, tables, period, scope, params)


_WEIGHT = _one_of("declarations", "customs_value")
_CONTROL = _one_of("risk", "random", "all")

#: The built-in metrics by name.
METRICS: Mapping[str, MetricSpec] = {
    "released_without_physical_inspection": MetricSpec(
        _released_without_inspection,
        {"physical": _codes},
        description="share of released declarations without a physical control (seed 002 7.4)",
    ),
    "corridor_share": MetricSpec(
        _corridor_share,
        {"corridor": _one_of("green", "yellow", "red"), "weight": _WEIGHT, "physical": _codes},
        required=("corridor",),
        description="share of declarations (or customs value) in a corridor (seed 000)",
    ),
    "aeo_share": MetricSpec(
        _aeo_share,
        {"weight": _WEIGHT},
        description="share of declarations (or customs value) lodged by AEO declarants",
    ),
    "hit_rate": MetricSpec(
        _hit_rate,
        {"control": _CONTROL, "profile": _key},
        description="controlled declarations where a violation was found, Wilson 95 % interval",
    ),
    "revenue_per_control": MetricSpec(
        _revenue_per_control,
        {"control": _CONTROL, "profile": _key},
        unit="UAH",
        description="revenue assessed per controlled declaration",
    ),
    "selectivity": MetricSpec(
        _selectivity,
        {"profile": _key},
        description="share of declarations with a control ordered by the profile (or any)",
    ),
    "reviews_on_time": MetricSpec(
        _reviews_on_time,
        {"reviews": _one_of("commission", "monitoring", "all")},
        description="share of the reviews due in the period recorded by their due date "
        "(seed 003 9.2, 9.5, 11.5)",
    ),
    "release_time": MetricSpec(
        _release_time,
        {
            "statistic": _one_of("mean", "median"),
            "corridor": _one_of("green", "yellow", "red"),
            "physical": _codes,
        },
        unit="hours",
        description="hours from lodgement to release",
    ),
}


def compute_metric(
    conn: sa.Connection,
    tables: StoreTables,
    name: str,
    params: Mapping[str, Any],
    period: Period,
    office: str | None = None,
) -> Measure:
    """The built-in metric ``name`` for ``period`` (and ``office``)."""
    return _spec(name).compute(conn, tables, period, Scope(office), params).get(office, EMPTY)


def compute_metric_each(
    conn: sa.Connection,
    tables: StoreTables,
    name: str,
    params: Mapping[str, Any],
    period: Period,
) -> Measures:
    """The built-in metric ``name`` for ``period``, for each office in one grouped query: the
    same values as :func:`compute_metric` per office (an office without declarations in the
    period is absent: :data:`EMPTY`)."""
    return _spec(name).compute(conn, tables, period, Scope(each=True), params)


def _spec(name: str) -> MetricSpec:
    spec = METRICS.get(name)
    if spec is None:
        raise KpiError(f"unknown metric {name!r} (built-in: {', '.join(sorted(METRICS))})")
    return spec


def offices(conn: sa.Connection, tables: StoreTables, period: Period) -> list[str]:
    """The offices with declarations in ``period``, sorted."""
    office = tables.column("declaration.office")
    query = (
        sa.select(office)
        .where(*in_period(tables, period, None), office.is_not(None))
        .distinct()
        .order_by(office)
    )
    return [str(row[0]) for row in conn.execute(query)]


_SQL_START = re.compile(r"\A(?:\s|--[^\n]*\n|/\*.*?\*/)*(select|with|values)\b", re.I | re.S)


def check_sql(sql: str) -> str:
    """A problem with a SQL source's text, or "": one SELECT (or WITH ... / VALUES) statement."""
    if not _SQL_START.match(sql):
        return "must be one SELECT statement (it may start with WITH)"
    if ";" in sql.strip().rstrip(";"):
        return "must be one statement (no ';' inside)"
    return ""


def run_sql(engine: sa.Engine, sql: str, period: Period, office: str | None = None) -> Measure:
    """A SQL source's value: the first column of its first row, with ``:period_start``,
    ``:period_end`` and ``:office`` (``NULL`` for all offices) bound.

    The query runs read-only: in a transaction that is always rolled back, with SQLite's
    ``PRAGMA query_only`` on or PostgreSQL's ``SET TRANSACTION READ ONLY``, so that a write is
    refused by the database (DuckDB has no such switch: there the rollback undoes it, and
    :func:`check_sql` has already refused anything that is not one SELECT).
    """
    problem = check_sql(sql)
    if problem:
        raise KpiError(f"the SQL source {problem}")
    binds = {"period_start": period.start, "period_end": period.end, "office": office}
    with engine.connect() as conn:
        backend = conn.dialect.name
        transaction = conn.begin()
        try:
            if backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            elif backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            types: dict[str, sa.types.TypeEngine[Any]] = {
                "period_start": sa.Date(),
                "period_end": sa.Date(),
                "office": sa.Text(),
            }
            used = {k: v for k, v in binds.items() if re.search(rf"(?<![:\w]):{k}\b", sql)}
            statement = sa.text(sql).bindparams(*(sa.bindparam(k, type_=types[k]) for k in used))
            row = conn.execute(statement, used).first()
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise KpiError(
                f"the SQL source failed: {str(reason).strip().splitlines()[0]}"
            ) from None
        finally:
            transaction.rollback()
            if backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = OFF")
    if row is None or row[0] is None:
        return Measure(None)
    value = row[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise KpiError(f"the SQL source returned {value!r}, not a number") from None
    return Measure(float(value))
