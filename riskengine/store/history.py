"""History from the store: one subject on one date (online scoring), or a whole date range in one
set-based query (backtests). Both give the same numbers.

The formula (``docs/store.md``): for a profile's ``history per S1, S2 over N days`` block, a
declaration's history counts the *events* of earlier declarations with the same subject:

* negative: every **non-completed clearance** (``clearance_outcomes.completed`` false) whose
  outcome ``date`` lies in ``[as_of - N days, as_of)`` counts per_case × the highest coefficient
  among its reason codes that the profile lists (0 when none is listed); the sum is capped at max;
* positive: every **clean control** (``control_results.violation_found`` false) whose ``date``
  lies in the same window counts step; the sum is capped at max.

The window uses the event's own date (the day the outcome or control was recorded), so nothing
dated on or after the declaration's date counts: no look-ahead.

Subject matching: header subject fields (``declaration.declarant.id``) must equal the earlier
declaration's; item subject fields (``item.hs_code[:4]``) must equal those of **some goods item**
of the earlier declaration, all item subject fields on the **same** item. An earlier declaration
counts once however many of its items match. A subject value that is missing gives 0 and 0.

Sums are exact: coefficients are scaled to integers (``0.8`` → ``8`` with scale 10), the database
adds integers, and the final per_case × units / scale and the caps are computed with ``Decimal``
before the result is turned into the evaluator's ``float``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from riskengine import model as m
from riskengine.evaluator.history import (
    NO_HISTORY,
    HistoryRecord,
    HistoryValue,
    history_block,
)
from riskengine.store.engine import StoreError
from riskengine.store.source import StoreSource, native_source

__all__ = [
    "HistoryTerms",
    "RangeHistory",
    "SqlHistoryProvider",
    "history_for_range",
    "history_select",
    "lookup_history",
]


# --- the profile's terms, scaled to integers ----------------------------------------------------


@attrs.frozen
class HistoryTerms:
    """A history block's numbers in the form the queries use.

    ``units`` maps each listed reason code to its coefficient × ``scale`` (an exact integer).
    """

    subjects: tuple[tuple[str, int | None], ...]
    window_days: int
    units: Mapping[str, int]
    scale: int
    per_case: Decimal
    negative_max: Decimal | None
    step: Decimal
    positive_max: Decimal | None

    @classmethod
    def of(cls, block: m.History) -> HistoryTerms:
        """The terms of a model ``History`` block."""
        reasons = block.negative.reasons if block.negative is not None else ()
        places = max((max(0, -_exponent(r.coefficient)) for r in reasons), default=0)
        scale = 10**places
        units: dict[str, int] = {}
        for reason in reasons:
            value = int(reason.coefficient * scale)
            # a code listed twice keeps its highest coefficient, like max() over the reasons
            units[reason.code] = max(value, units.get(reason.code, value))
        return cls(
            subjects=tuple((s.field.path, s.prefix) for s in block.subjects),
            window_days=block.window_days,
            units=units,
            scale=scale,
            per_case=block.negative.per_case if block.negative is not None else Decimal(0),
            negative_max=block.negative.max if block.negative is not None else None,
            step=block.positive.step if block.positive is not None else Decimal(0),
            positive_max=block.positive.max if block.positive is not None else None,
        )

    def negative(self, units: int) -> Decimal:
        """negative_history from the sum of the clearances' scaled coefficients."""
        if self.negative_max is None:
            return Decimal(0)
        return min(self.negative_max, self.per_case * Decimal(units) / self.scale)

    def positive(self, clean_controls: int) -> Decimal:
        """positive_history from the number of clean controls."""
        if self.positive_max is None:
            return Decimal(0)
        return min(self.positive_max, self.step * clean_controls)

    def clearance_units(self, reasons: Sequence[str]) -> int:
        """The scaled coefficient one non-completed clearance with ``reasons`` counts."""
        listed = [self.units[r] for r in reasons if r in self.units]
        return max(listed) if listed else 0

    @property
    def item_subjects(self) -> bool:
        return any(path.startswith("item.") for path, _ in self.subjects)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


# --- dates -----------------------------------------------------------------------------------


class days_before(FunctionElement[dt.date]):
    """``date - N days`` in each dialect; ``N`` is a bound parameter."""

    name = "days_before"
    inherit_cache = True
    type = sa.Date()


@compiles(days_before)
def _days_before_default(element: days_before, compiler: Any, **kw: Any) -> str:
    date, days = list(element.clauses)
    return (
        f"({compiler.process(date, **kw)} - "
        f"CAST({compiler.process(days, **kw)} AS INTEGER) * INTERVAL '1 day')"
    )


@compiles(days_before, "sqlite")
def _days_before_sqlite(element: days_before, compiler: Any, **kw: Any) -> str:
    date, days = list(element.clauses)
    return (
        f"date({compiler.process(date, **kw)}, "
        f"'-' || CAST({compiler.process(days, **kw)} AS TEXT) || ' days')"
    )


@compiles(days_before, "duckdb")
def _days_before_duckdb(element: days_before, compiler: Any, **kw: Any) -> str:
    date, days = list(element.clauses)
    return (
        f"({compiler.process(date, **kw)} - "
        f"to_days(CAST({compiler.process(days, **kw)} AS INTEGER)))"
    )


# --- subject expressions ---------------------------------------------------------------------


def _subject_expr(
    source: StoreSource, path: str, prefix: int | None, alias: sa.FromClause
) -> sa.ColumnElement[Any]:
    column = source.field(path, alias)
    if prefix is None:
        return column
    return sa.func.substr(column, 1, prefix)


def _check_subjects(terms: HistoryTerms, source: StoreSource) -> None:
    for path, _ in terms.subjects:
        if not source.has_field(path):
            raise StoreError(f"{source.name} has no column for the history subject {path!r}")


# --- the set-based path --------------------------------------------------------------------


def _event_sources(
    terms: HistoryTerms, source: StoreSource
) -> tuple[sa.Subquery | None, sa.Subquery | None]:
    """Subqueries of past events with the subject values of their declarations (``s0``...):
    non-completed clearances with their scaled coefficient, and clean controls."""
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    p = source.declarations.alias("p")
    header = [(i, path, prefix) for i, (path, prefix) in enumerate(terms.subjects)]
    if terms.item_subjects:
        pi = source.items.alias("pi")
        item_cols = [
            _subject_expr(source, path, prefix, pi).label(f"s{i}")
            for i, path, prefix in header
            if path.startswith("item.")
        ]
        item_keys = sa.select(pi.c.decl_pk, *item_cols).distinct().subquery("item_keys")
    subject_of_p = []
    for i, path, prefix in header:
        if path.startswith("item."):
            subject_of_p.append(item_keys.c[f"s{i}"].label(f"s{i}"))
        else:
            subject_of_p.append(_subject_expr(source, path, prefix, p).label(f"s{i}"))

    def with_subject(base: sa.FromClause, key: sa.ColumnElement[Any]) -> sa.FromClause:
        joined = base.join(p, p.c.pk == key)
        if terms.item_subjects:
            joined = joined.join(item_keys, item_keys.c.decl_pk == p.c.pk)
        return joined

    negative = None
    if terms.negative_max is not None and terms.units:
        r = reasons.alias("r")
        coefficient = sa.case(
            {code: sa.literal(units, sa.BigInteger) for code, units in terms.units.items()},
            value=r.c.reason_code,
        )
        scored = (
            sa.select(r.c.decl_pk, sa.func.max(coefficient).label("units"))
            .where(r.c.reason_code.in_(list(terms.units)))
            .group_by(r.c.decl_pk)
            .subquery("scored")
        )
        o = outcomes.alias("o")
        negative = (
            sa.select(*subject_of_p, o.c.date.label("event_date"), scored.c.units)
            .select_from(with_subject(o.join(scored, scored.c.decl_pk == o.c.decl_pk), o.c.decl_pk))
            .where(o.c.completed.is_(False))
            .subquery("negative_events")
        )
    positive = None
    if terms.positive_max is not None:
        c = controls.alias("c")
        positive = (
            sa.select(*subject_of_p, c.c.date.label("event_date"))
            .select_from(with_subject(c, c.c.decl_pk))
            .where(c.c.violation_found.is_(False))
            .subquery("positive_events")
        )
    return negative, positive


def history_select(
    block: m.History | HistoryTerms,
    source: StoreSource | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> sa.Select[Any]:
    """One query giving the history of every goods item of the declarations dated
    ``start``..``end`` (inclusive; ``None`` = open).

    Columns: ``decl_pk``, ``item_no`` (``NULL`` for a declaration without items), ``as_of`` (the
    declaration's date), ``negative_units`` (Σ scaled coefficients, before per_case and the cap),
    ``clean_controls``, and ``negative_history`` / ``positive_history`` computed in SQL (exact on
    PostgreSQL and DuckDB, floating point on SQLite; :func:`history_for_range` computes them
    exactly in Python from the integer columns).
    """
    terms = block if isinstance(block, HistoryTerms) else HistoryTerms.of(block)
    source = source or native_source()
    _check_subjects(terms, source)
    d = source.declarations.alias("d")
    i = source.items.alias("i")
    n = len(terms.subjects)
    subject_cols = [
        _subject_expr(source, path, prefix, i if path.startswith("item.") else d).label(f"s{k}")
        for k, (path, prefix) in enumerate(terms.subjects)
    ]
    targets = sa.select(
        d.c.pk.label("decl_pk"), i.c.item_no, d.c.date.label("as_of"), *subject_cols
    ).select_from(d.outerjoin(i, i.c.decl_pk == d.c.pk))
    if start is not None:
        targets = targets.where(d.c.date >= start)
    if end is not None:
        targets = targets.where(d.c.date <= end)
    t = targets.subquery("targets")
    keys = (
        sa.select(t.c.as_of, *(t.c[f"s{k}"] for k in range(n)))
        .where(*(t.c[f"s{k}"].is_not(None) for k in range(n)))
        .distinct()
        .subquery("subject_keys")
    )
    negative_events, positive_events = _event_sources(terms, source)
    window = sa.bindparam("window_days", terms.window_days, type_=sa.Integer)

    def aggregate(events: sa.Subquery, value: sa.ColumnElement[Any], name: str) -> sa.Subquery:
        matches = [events.c[f"s{k}"] == keys.c[f"s{k}"] for k in range(n)]
        return (
            sa.select(keys.c.as_of, *(keys.c[f"s{k}"] for k in range(n)), value.label(name))
            .select_from(
                keys.join(
                    events,
                    sa.and_(
                        *matches,
                        events.c.event_date >= days_before(keys.c.as_of, window),
                        events.c.event_date < keys.c.as_of,
                    ),
                )
            )
            .group_by(keys.c.as_of, *(keys.c[f"s{k}"] for k in range(n)))
            .subquery(f"{name}_by_subject")
        )

    joined: sa.FromClause = t
    negative_units: sa.ColumnElement[Any] = sa.literal(0, sa.BigInteger)
    clean_controls: sa.ColumnElement[Any] = sa.literal(0, sa.BigInteger)

    def on(agg: sa.Subquery) -> sa.ColumnElement[bool]:
        return sa.and_(
            agg.c.as_of == t.c.as_of, *(agg.c[f"s{k}"] == t.c[f"s{k}"] for k in range(n))
        )

    if negative_events is not None:
        neg = aggregate(negative_events, sa.func.sum(negative_events.c.units), "negative_units")
        joined = joined.outerjoin(neg, on(neg))
        negative_units = sa.func.coalesce(neg.c.negative_units, 0)
    if positive_events is not None:
        pos = aggregate(positive_events, sa.func.count(), "clean_controls")
        joined = joined.outerjoin(pos, on(pos))
        clean_controls = sa.func.coalesce(pos.c.clean_controls, 0)

    exact = sa.Numeric(38, 12)
    negative_sql: sa.ColumnElement[Any] = sa.literal(0, exact)
    if terms.negative_max is not None:
        raw = (
            sa.cast(negative_units, exact)
            * sa.literal(terms.per_case, exact)
            / sa.literal(Decimal(terms.scale), exact)
        )
        cap = sa.literal(terms.negative_max, exact)
        negative_sql = sa.case((raw > cap, cap), else_=raw)
    positive_sql: sa.ColumnElement[Any] = sa.literal(0, exact)
    if terms.positive_max is not None:
        raw = sa.cast(clean_controls, exact) * sa.literal(terms.step, exact)
        cap = sa.literal(terms.positive_max, exact)
        positive_sql = sa.case((raw > cap, cap), else_=raw)
    return sa.select(
        t.c.decl_pk,
        t.c.item_no,
        t.c.as_of,
        negative_units.label("negative_units"),
        clean_controls.label("clean_controls"),
        negative_sql.label("negative_history"),
        positive_sql.label("positive_history"),
    ).select_from(joined)


@attrs.frozen
class RangeHistory:
    """The history of one goods item (``item_no`` ``None``: a declaration without items)."""

    decl_pk: int
    item_no: int | None
    as_of: dt.date
    negative: float
    positive: float
    negative_units: int
    clean_controls: int


def history_for_range(
    connection: sa.Connection,
    profile: Any,
    source: StoreSource | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Iterator[RangeHistory]:
    """Stream the history of every goods item dated ``start``..``end``, from one query.

    ``profile`` is a model ``Profile``, a ``CompiledProfile`` or a ``History`` block. A profile
    without a history block gives nothing (its history is 0 everywhere).
    """
    block = profile if isinstance(profile, m.History) else history_block(profile)
    if block is None:
        return
    terms = HistoryTerms.of(block)
    query = history_select(terms, source, start, end)
    result = connection.execute(query.execution_options(stream_results=True, yield_per=10_000))
    values: dict[tuple[int, int], tuple[float, float]] = {}  # few distinct sums: compute once
    for decl_pk, item_no, as_of, raw_units, raw_clean, _, _ in result:
        units = int(raw_units)
        clean = int(raw_clean)
        found = values.get((units, clean))
        if found is None:
            found = values[(units, clean)] = (
                float(terms.negative(units)),
                float(terms.positive(clean)),
            )
        yield RangeHistory(decl_pk, item_no, as_of, found[0], found[1], units, clean)


# --- the single-subject path ---------------------------------------------------------------


@attrs.frozen
class _Events:
    """One subject's events: non-completed clearances and clean controls, each sorted by date."""

    clearance_dates: tuple[dt.date, ...]
    clearances: tuple[tuple[dt.date, str | None, tuple[str, ...]], ...]
    control_dates: tuple[dt.date, ...]
    controls: tuple[tuple[dt.date, str | None], ...]


_NO_EVENTS = _Events((), (), (), ())


def _load_all_events(
    connection: sa.Connection, terms: HistoryTerms, source: StoreSource
) -> dict[tuple[Any, ...], _Events]:
    """Every subject's events (all dates) for one subject definition, in two queries."""
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    p = source.declarations.alias("p")
    subject_cols: list[sa.ColumnElement[Any]] = []
    base: sa.FromClause = p
    if terms.item_subjects:
        pi = source.items.alias("pi")
        item_cols = [
            _subject_expr(source, path, prefix, pi).label(f"s{k}")
            for k, (path, prefix) in enumerate(terms.subjects)
            if path.startswith("item.")
        ]
        keys = sa.select(pi.c.decl_pk, *item_cols).distinct().subquery("item_keys")
        base = p.join(keys, keys.c.decl_pk == p.c.pk)
    for k, (path, prefix) in enumerate(terms.subjects):
        if path.startswith("item."):
            subject_cols.append(keys.c[f"s{k}"])
        else:
            subject_cols.append(_subject_expr(source, path, prefix, p))
    o = outcomes.alias("o")
    r = reasons.alias("r")
    n = len(subject_cols)
    negative = (
        sa.select(*subject_cols, o.c.decl_pk, p.c.id, o.c.date, r.c.reason_code)
        .select_from(base.join(o, o.c.decl_pk == p.c.pk).outerjoin(r, r.c.decl_pk == o.c.decl_pk))
        .where(o.c.completed.is_(False), *(col.is_not(None) for col in subject_cols))
    )
    clearances: dict[tuple[Any, ...], dict[Any, tuple[dt.date, str | None, list[str]]]] = {}
    for row in connection.execute(negative):
        subject = tuple(row[:n])
        decl_pk, decl_id, date, code = row[n:]
        entry = clearances.setdefault(subject, {}).setdefault(decl_pk, (date, decl_id, []))
        if code is not None:
            entry[2].append(code)
    c = controls.alias("c")
    positive = (
        sa.select(*subject_cols, c.c.date, p.c.id)
        .select_from(base.join(c, c.c.decl_pk == p.c.pk))
        .where(c.c.violation_found.is_(False), *(col.is_not(None) for col in subject_cols))
    )
    clean: dict[tuple[Any, ...], list[tuple[dt.date, str | None]]] = {}
    for row in connection.execute(positive):
        clean.setdefault(tuple(row[:n]), []).append((row[n], row[n + 1]))
    out = {}
    for subject in clearances.keys() | clean.keys():
        found = sorted(clearances.get(subject, {}).items(), key=lambda kv: (kv[1][0], kv[0]))
        listed = tuple((d, i, tuple(sorted(codes))) for _, (d, i, codes) in found)
        checks = tuple(sorted(clean.get(subject, []), key=lambda e: (e[0], e[1] or "")))
        out[subject] = _Events(
            clearance_dates=tuple(e[0] for e in listed),
            clearances=listed,
            control_dates=tuple(e[0] for e in checks),
            controls=checks,
        )
    return out


def _subject_filter(
    terms: HistoryTerms, source: StoreSource, p: sa.FromClause, subject: Sequence[Any]
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    item_conditions: list[sa.ColumnElement[bool]] = []
    pi = source.items.alias("pi")
    for (path, prefix), value in zip(terms.subjects, subject, strict=True):
        if path.startswith("item."):
            item_conditions.append(_subject_expr(source, path, prefix, pi) == value)
        else:
            conditions.append(_subject_expr(source, path, prefix, p) == value)
    if item_conditions:
        conditions.append(
            sa.exists().where(pi.c.decl_pk == p.c.pk, *item_conditions).select_from(pi)
        )
    return conditions


def _load_events(
    connection: sa.Connection,
    terms: HistoryTerms,
    source: StoreSource,
    subject: Sequence[Any],
    start: dt.date | None,
    end: dt.date | None,
) -> _Events:
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    clearances: list[tuple[dt.date, str | None, tuple[str, ...]]] = []
    found_controls: list[tuple[dt.date, str | None]] = []
    if terms.negative_max is not None:
        p = source.declarations.alias("p")
        o = outcomes.alias("o")
        r = reasons.alias("r")
        query: sa.Select[Any] = (
            sa.select(o.c.decl_pk, p.c.id, o.c.date, r.c.reason_code)
            .select_from(o.join(p, p.c.pk == o.c.decl_pk).outerjoin(r, r.c.decl_pk == o.c.decl_pk))
            .where(o.c.completed.is_(False), *_subject_filter(terms, source, p, subject))
            .order_by(o.c.date, o.c.decl_pk)
        )
        if start is not None:
            query = query.where(o.c.date >= start)
        if end is not None:
            query = query.where(o.c.date < end)
        by_declaration: dict[Any, tuple[dt.date, str | None, list[str]]] = {}
        for decl_pk, decl_id, date, code in connection.execute(query):
            entry = by_declaration.setdefault(decl_pk, (date, decl_id, []))
            if code is not None:
                entry[2].append(code)
        clearances = [(d, i, tuple(sorted(codes))) for d, i, codes in by_declaration.values()]
    if terms.positive_max is not None:
        p = source.declarations.alias("p")
        c = controls.alias("c")
        query_c: sa.Select[Any] = (
            sa.select(c.c.date, p.c.id)
            .select_from(c.join(p, p.c.pk == c.c.decl_pk))
            .where(c.c.violation_found.is_(False), *_subject_filter(terms, source, p, subject))
            .order_by(c.c.date, p.c.id)
        )
        if start is not None:
            query_c = query_c.where(c.c.date >= start)
        if end is not None:
            query_c = query_c.where(c.c.date < end)
        found_controls = [(row[0], row[1]) for row in connection.execute(query_c)]
    return _Events(
        clearance_dates=tuple(e[0] for e in clearances),
        clearances=tuple(clearances),
        control_dates=tuple(e[0] for e in found_controls),
        controls=tuple(found_controls),
    )


def _value(terms: HistoryTerms, events: _Events, start: dt.date, as_of: dt.date) -> HistoryValue:
    records: list[HistoryRecord] = []
    units = 0
    if terms.negative_max is not None:
        lo = bisect.bisect_left(events.clearance_dates, start)
        hi = bisect.bisect_left(events.clearance_dates, as_of)
        for date, decl_id, reasons in events.clearances[lo:hi]:
            value = terms.clearance_units(reasons)
            units += value
            contribution = terms.per_case * Decimal(value) / terms.scale
            records.append(HistoryRecord("clearance", date, float(contribution), decl_id, reasons))
    clean = 0
    if terms.positive_max is not None:
        lo = bisect.bisect_left(events.control_dates, start)
        hi = bisect.bisect_left(events.control_dates, as_of)
        for date, decl_id in events.controls[lo:hi]:
            clean += 1
            records.append(HistoryRecord("control", date, float(terms.step), decl_id))
    return HistoryValue(
        negative=float(terms.negative(units)),
        positive=float(terms.positive(clean)),
        records=tuple(records),
    )


def lookup_history(
    connection: sa.Connection,
    profile: Any,
    subject: Sequence[Any],
    as_of: dt.date,
    source: StoreSource | None = None,
) -> HistoryValue:
    """The history of one subject on ``as_of``, with the records behind it (two indexed queries).

    ``subject`` holds the values of the block's ``per`` fields, prefixes already applied (what
    ``riskengine.evaluator.history.subject_of`` returns).
    """
    block = profile if isinstance(profile, m.History) else history_block(profile)
    if block is None or any(v is None for v in subject):
        return NO_HISTORY
    terms = HistoryTerms.of(block)
    source = source or native_source()
    _check_subjects(terms, source)
    start = as_of - dt.timedelta(days=terms.window_days)
    events = _load_events(connection, terms, source, subject, start, as_of)
    return _value(terms, events, start, as_of)


class SqlHistoryProvider:
    """The evaluator's history provider over the store (or a user's tables through a mapping).

    Each call runs two indexed queries on a connection from ``engine``'s pool; safe to share
    between threads. With ``cache=True`` a subject's events are read once (all dates) and kept
    in memory; :meth:`record_outcome` and :meth:`record_control` write new events and drop the
    cached subjects they touch, so the cache stays current as outcomes arrive. Writes made by
    other processes are not seen by a cache: call :meth:`clear_cache` (or use no cache).
    """

    def __init__(
        self,
        engine: sa.Engine,
        source: StoreSource | None = None,
        *,
        cache: bool = False,
        cache_size: int = 100_000,
    ) -> None:
        self.engine = engine
        self.source = source or native_source()
        self.cache = cache
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._events: dict[tuple[tuple[tuple[str, int | None], ...], tuple[Any, ...]], _Events] = {}
        self._complete: set[tuple[tuple[str, int | None], ...]] = set()
        self.queries = 0  # number of database round trips for history, for tests and stats

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The capped history values of ``subject`` on ``as_of`` and the records behind them."""
        block = history_block(profile)
        if block is None or any(v is None for v in subject):
            return NO_HISTORY
        terms = HistoryTerms.of(block)
        start = as_of - dt.timedelta(days=terms.window_days)
        if not self.cache:
            _check_subjects(terms, self.source)
            with self.engine.connect() as connection:
                self.queries += 1
                events = _load_events(connection, terms, self.source, subject, start, as_of)
            return _value(terms, events, start, as_of)
        key = (terms.subjects, tuple(subject))
        cached = self._events.get(key)
        if cached is not None:
            events = cached
        elif terms.subjects in self._complete:
            events = _NO_EVENTS  # preloaded: a subject without events has none
        else:
            _check_subjects(terms, self.source)
            # Cached events serve every profile with the same subject: load both kinds, all dates.
            wide = attrs.evolve(terms, negative_max=Decimal(0), positive_max=Decimal(0))
            with self.engine.connect() as connection:
                self.queries += 1
                events = _load_events(connection, wide, self.source, subject, None, None)
            with self._lock:
                if len(self._events) >= self.cache_size and not self._complete:
                    self._events.clear()
                self._events[key] = events
        return _value(terms, events, start, as_of)

    def preload(self, profile: Any) -> int:
        """Read the events of every subject of ``profile``'s history block (or a ``History``
        block) in two queries and keep them, so later lookups for that subject definition need
        no query at all. Needs ``cache=True``. Returns the number of subjects with events."""
        if not self.cache:
            raise StoreError("preload needs a provider made with cache=True")
        block = profile if isinstance(profile, m.History) else history_block(profile)
        if block is None:
            return 0
        terms = HistoryTerms.of(block)
        _check_subjects(terms, self.source)
        with self.engine.connect() as connection:
            self.queries += 2
            loaded = _load_all_events(connection, terms, self.source)
        with self._lock:
            for subject, events in loaded.items():
                self._events[(terms.subjects, subject)] = events
            self._complete.add(terms.subjects)
        return len(loaded)

    def clear_cache(self) -> None:
        """Forget every cached subject."""
        with self._lock:
            self._events.clear()
            self._complete.clear()

    def _forget(self, connection: sa.Connection, decl_pk: int) -> None:
        """Reload the cached subjects that the declaration ``decl_pk`` belongs to (inside the
        writing transaction, so the new event is seen)."""
        specs = {key[0] for key in self._events} | self._complete
        if not specs:
            return
        d = self.source.declarations
        found = connection.execute(sa.select(d).where(d.c.pk == decl_pk)).mappings().first()
        if found is None:
            return
        header = dict(found)
        i = self.source.items
        items = [
            dict(r)
            for r in connection.execute(sa.select(i).where(i.c.decl_pk == decl_pk)).mappings()
        ]
        for spec in specs:
            for subject in _subjects_of(spec, header, items, self.source):
                key = (spec, subject)
                if key not in self._events and spec not in self._complete:
                    continue
                terms = HistoryTerms(spec, 0, {}, 1, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
                self.queries += 1
                events = _load_events(connection, terms, self.source, subject, None, None)
                with self._lock:
                    self._events[key] = events

    def record_outcome(
        self,
        connection: sa.Connection,
        declaration_id: str,
        *,
        completed: bool,
        date: dt.date,
        reasons: Sequence[str] = (),
    ) -> None:
        """Store a clearance outcome (in ``connection``'s transaction) and refresh the cache."""
        from riskengine.store.writer import write_outcome

        decl_pk = write_outcome(connection, declaration_id, completed, date, reasons)
        self._forget(connection, decl_pk)

    def record_control(
        self,
        connection: sa.Connection,
        declaration_id: str,
        *,
        procedure: str,
        date: dt.date,
        violation_found: bool,
        profile_key: str | None = None,
        random_control: bool = False,
        revenue: Decimal | None = None,
    ) -> None:
        """Store a control result (in ``connection``'s transaction) and refresh the cache."""
        from riskengine.store.writer import write_control

        decl_pk = write_control(
            connection,
            declaration_id,
            procedure=procedure,
            date=date,
            violation_found=violation_found,
            profile_key=profile_key,
            random_control=random_control,
            revenue=revenue,
        )
        self._forget(connection, decl_pk)


def _subjects_of(
    subjects: tuple[tuple[str, int | None], ...],
    header: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    source: StoreSource,
) -> set[tuple[Any, ...]]:
    """The subject values a declaration (its header row and item rows) has for ``subjects``."""

    def value(row: Mapping[str, Any], path: str, prefix: int | None) -> Any:
        found = row.get(source.field_columns[path])
        if prefix is not None and isinstance(found, str):
            return found[:prefix]
        return found

    item_level = any(path.startswith("item.") for path, _ in subjects)
    rows = items if item_level else [{}]
    out = set()
    for item in rows:
        subject = tuple(
            value(item if path.startswith("item.") else header, path, prefix)
            for path, prefix in subjects
        )
        if all(v is not None for v in subject):
            out.add(subject)
    return out
