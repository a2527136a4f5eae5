"""The KPI report: for each passport, its baseline, target, actual value and score for one
reporting year, overall or per office, and the total Σ scores / (5 × n) (seed 004 §3.7–3.8).

A KPI that cannot be scored (its metric is not available yet, its period has no data, its target
cannot be computed) is listed with the reason and left out of the total: ``n`` counts the KPIs
that were scored, and the report says how many were not.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import sqlalchemy as sa

from riskengine.kpi.metrics import (
    EMPTY,
    KpiError,
    Measure,
    Measures,
    MetricNotAvailable,
    compute_metric,
    compute_metric_each,
    offices,
    run_sql,
)
from riskengine.kpi.passport import Passport, TargetMethod
from riskengine.kpi.periods import Period, reporting_year
from riskengine.kpi.targets import Score, Total, mean, score, total, trimmed_mean
from riskengine.store.schema import SchemaError, StoreTables

__all__ = ["KpiReport", "KpiRow", "build_report", "measure"]


@attrs.frozen
class KpiRow:
    """One KPI for one office (``None``: all offices) in one reporting period."""

    passport: Passport
    office: str | None
    period: Period
    actual: Measure | None
    baseline: float | None
    target: float | None
    target_note: str
    past: tuple[tuple[str, float | None], ...]
    score: Score | None
    problem: str | None


@attrs.frozen
class KpiReport:
    """Rows for each passport, per group: ``None`` (all offices) then each office when broken
    down; ``totals`` per group."""

    year: int
    by_office: bool
    groups: tuple[str | None, ...]
    rows: tuple[KpiRow, ...]
    totals: dict[str | None, Total]

    def group_rows(self, group: str | None) -> list[KpiRow]:
        return [row for row in self.rows if row.office == group]


def measure(
    engine: sa.Engine,
    tables: StoreTables,
    passport: Passport,
    period: Period,
    office: str | None = None,
) -> Measure:
    """The passport's source for ``period`` and ``office``; a failing source names the file."""
    return _Measurer(engine, tables).measure(passport, period, office)


class _Measurer:
    """Measures with a cache; with ``each``, a built-in metric is computed for every office in
    one grouped query per period (the per-office tables of ``--by office``)."""

    def __init__(self, engine: sa.Engine, tables: StoreTables, *, each: bool = False) -> None:
        self.engine = engine
        self.tables = tables
        self.each = each
        self.cache: dict[tuple[str, Period, str | None], Measure] = {}
        self.grouped: dict[tuple[str, Period], Measures] = {}

    def measure(self, passport: Passport, period: Period, office: str | None) -> Measure:
        key = (passport.id, period, office)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self._compute(passport, period, office)
        return found

    def _compute(self, passport: Passport, period: Period, office: str | None) -> Measure:
        source = passport.source
        try:
            if source.sql is not None:
                return run_sql(self.engine, source.sql, period, office)
            assert source.metric is not None
            if self.each and office is not None:
                grouped = self.grouped.get((passport.id, period))
                if grouped is None:
                    with self.engine.connect() as conn:
                        grouped = compute_metric_each(
                            conn, self.tables, source.metric, source.params, period
                        )
                    self.grouped[(passport.id, period)] = grouped
                return grouped.get(office, EMPTY)
            with self.engine.connect() as conn:
                return compute_metric(
                    conn, self.tables, source.metric, source.params, period, office
                )
        except MetricNotAvailable:
            raise
        except (KpiError, SchemaError) as exc:  # a failing query; a store without a column
            raise KpiError(f"{passport.file or passport.id}: source: {exc}") from None


def _target(
    measurer: _Measurer,
    passport: Passport,
    year: int,
    office: str | None,
) -> tuple[float | None, str, tuple[tuple[str, float | None], ...]]:
    target = passport.target
    reference = f" ({target.reference})" if target.reference else ""
    if target.method is TargetMethod.LIMIT:
        return target.value, "limit value" + reference, ()
    if target.method is TargetMethod.NORMATIVE:
        return target.value, "normative value" + reference, ()
    past: list[tuple[str, float | None]] = []
    if target.values is not None:
        past = [(f"given {i}", v) for i, v in enumerate(target.values, start=1)]
    else:
        assert target.past_periods is not None
        for back in range(target.past_periods, 0, -1):
            period = reporting_year(year - back, passport.year_start_month)
            past.append((period.label, measurer.measure(passport, period, office).value))
    values = [v for _, v in past if v is not None]
    if not values:
        return None, f"no past period with data ({len(past)} looked at)", tuple(past)
    if target.method is TargetMethod.MEAN:
        computed = mean(values)
    else:
        computed = trimmed_mean(values, passport.direction)
    skipped = len(past) - len(values)
    note = computed.note + (f"; {skipped} without data skipped" if skipped else "")
    return computed.value, note + reference, tuple(past)


def _row(measurer: _Measurer, passport: Passport, year: int, office: str | None) -> KpiRow:
    period = reporting_year(year, passport.year_start_month)
    problem: str | None = None
    try:
        actual: Measure | None = measurer.measure(passport, period, office)
    except MetricNotAvailable as exc:
        static = passport.target.value  # limit / normative; the means need the metric
        return KpiRow(passport, office, period, None, passport.baseline_value, static, "", (),
                      None, str(exc))  # fmt: skip
    baseline = passport.baseline_value
    if baseline is None:
        baseline_period = reporting_year(passport.baseline_year, passport.year_start_month)
        baseline = measurer.measure(passport, baseline_period, office).value
    target, note, past = _target(measurer, passport, year, office)
    points: Score | None = None
    if actual is None or actual.value is None:
        problem = "no data in the period"
    elif target is None:
        problem = "no target: " + note
    else:
        try:
            points = score(actual.value, target, passport.direction, passport.scale)
        except ValueError as exc:
            problem = str(exc)
    return KpiRow(passport, office, period, actual, baseline, target, note, past, points, problem)


def build_report(
    engine: sa.Engine,
    tables: StoreTables,
    passports: Sequence[Passport],
    year: int,
    *,
    by_office: bool = False,
) -> KpiReport:
    """The report for reporting year ``year``: all offices, then each office when ``by_office``."""
    groups: list[str | None] = [None]
    if by_office:
        found: set[str] = set()
        with engine.connect() as conn:
            for month in sorted({p.year_start_month for p in passports}):
                found.update(offices(conn, tables, reporting_year(year, month)))
        groups += sorted(found)
    measurer = _Measurer(engine, tables, each=by_office)
    rows = [_row(measurer, p, year, group) for group in groups for p in passports]
    totals = {
        group: total([r.score.points for r in rows if r.office == group and r.score is not None])
        for group in groups
    }
    return KpiReport(year, by_office, tuple(groups), tuple(rows), totals)
