"""History of one subject on one date from the store (online scoring): :func:`lookup_history`
and the evaluator's :class:`SqlHistoryProvider` (optionally caching a subject's events).

Two indexed queries read the subject's events; the values are those of the one formula
(:func:`riskengine.semantics.history.history_value`), as in the evaluator's in-memory provider
and, bit for bit, in the set-based SQL of backtests.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.semantics.history import (
    NO_HISTORY,
    HistoryTerms,
    HistoryValue,
    TermsCache,
    history_block,
    history_value,
)
from riskengine.store.engine import StoreError
from riskengine.store.history.subjects import check_subjects, subject_expr
from riskengine.store.source import StoreSource, native_source

__all__ = ["SqlHistoryProvider", "lookup_history"]

#: A subject definition: the (path, prefix) of each ``per`` field.
_Spec = tuple[tuple[str, int | None], ...]


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
            subject_expr(source, path, prefix, pi).label(f"s{k}")
            for k, (path, prefix) in enumerate(terms.subjects)
            if path.startswith("item.")
        ]
        keys = sa.select(pi.c.decl_pk, *item_cols).distinct().subquery("item_keys")
        base = p.join(keys, keys.c.decl_pk == p.c.pk)
    for k, (path, prefix) in enumerate(terms.subjects):
        if path.startswith("item."):
            subject_cols.append(keys.c[f"s{k}"])
        else:
            subject_cols.append(subject_expr(source, path, prefix, p))
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
    subjects: _Spec, source: StoreSource, p: sa.FromClause, subject: Sequence[Any]
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    item_conditions: list[sa.ColumnElement[bool]] = []
    pi = source.items.alias("pi")
    for (path, prefix), value in zip(subjects, subject, strict=True):
        if path.startswith("item."):
            item_conditions.append(subject_expr(source, path, prefix, pi) == value)
        else:
            conditions.append(subject_expr(source, path, prefix, p) == value)
    if item_conditions:
        conditions.append(
            sa.exists().where(pi.c.decl_pk == p.c.pk, *item_conditions).select_from(pi)
        )
    return conditions


def _load_events(
    connection: sa.Connection,
    subjects: _Spec,
    source: StoreSource,
    subject: Sequence[Any],
    start: dt.date | None,
    end: dt.date | None,
    negative: bool = True,
    positive: bool = True,
) -> _Events:
    """One subject's non-completed clearances (when ``negative``) and clean controls (when
    ``positive``) dated in [start, end) (``None``: open)."""
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    clearances: list[tuple[dt.date, str | None, tuple[str, ...]]] = []
    found_controls: list[tuple[dt.date, str | None]] = []
    if negative:
        p = source.declarations.alias("p")
        o = outcomes.alias("o")
        r = reasons.alias("r")
        query: sa.Select[Any] = (
            sa.select(o.c.decl_pk, p.c.id, o.c.date, r.c.reason_code)
            .select_from(o.join(p, p.c.pk == o.c.decl_pk).outerjoin(r, r.c.decl_pk == o.c.decl_pk))
            .where(o.c.completed.is_(False), *_subject_filter(subjects, source, p, subject))
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
    if positive:
        p = source.declarations.alias("p")
        c = controls.alias("c")
        query_c: sa.Select[Any] = (
            sa.select(c.c.date, p.c.id)
            .select_from(c.join(p, p.c.pk == c.c.decl_pk))
            .where(c.c.violation_found.is_(False), *_subject_filter(subjects, source, p, subject))
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
    """The history value from a subject's events: those in [start, as_of), by the formula."""
    clearances: Sequence[tuple[dt.date, str | None, tuple[str, ...]]] = ()
    controls: Sequence[tuple[dt.date, str | None]] = ()
    if terms.negative is not None:
        lo = bisect.bisect_left(events.clearance_dates, start)
        hi = bisect.bisect_left(events.clearance_dates, as_of)
        clearances = events.clearances[lo:hi]
    if terms.positive is not None:
        lo = bisect.bisect_left(events.control_dates, start)
        hi = bisect.bisect_left(events.control_dates, as_of)
        controls = events.controls[lo:hi]
    return history_value(terms, clearances, controls)


def lookup_history(
    connection: sa.Connection,
    profile: Any,
    subject: Sequence[Any],
    as_of: dt.date,
    source: StoreSource | None = None,
) -> HistoryValue:
    """The history of one subject on ``as_of``, with the records behind it (two indexed queries).

    ``subject`` holds the values of the block's ``per`` fields, prefixes already applied (what
    ``riskengine.semantics.history.subject_of`` returns).
    """
    block = profile if isinstance(profile, m.History) else history_block(profile)
    if block is None or any(v is None for v in subject):
        return NO_HISTORY
    terms = HistoryTerms.of(block)
    source = source or native_source()
    check_subjects(terms, source)
    start = as_of - dt.timedelta(days=terms.window_days)
    events = _load_events(
        connection, terms.subjects, source, subject, start, as_of,
        terms.negative is not None, terms.positive is not None,
    )  # fmt: skip
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
        self._terms = TermsCache()

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The capped history values of ``subject`` on ``as_of`` and the records behind them."""
        block = history_block(profile)
        if block is None or any(v is None for v in subject):
            return NO_HISTORY
        terms = self._terms.get(block)
        start = as_of - dt.timedelta(days=terms.window_days)
        if not self.cache:
            check_subjects(terms, self.source)
            with self.engine.connect() as connection:
                self.queries += 1
                events = _load_events(
                    connection, terms.subjects, self.source, subject, start, as_of,
                    terms.negative is not None, terms.positive is not None,
                )  # fmt: skip
            return _value(terms, events, start, as_of)
        key = (terms.subjects, tuple(subject))
        cached = self._events.get(key)
        if cached is not None:
            events = cached
        elif terms.subjects in self._complete:
            events = _NO_EVENTS  # preloaded: a subject without events has none
        else:
            check_subjects(terms, self.source)
            # Cached events serve every profile with the same subject: load both kinds, all dates.
            with self.engine.connect() as connection:
                self.queries += 1
                events = _load_events(connection, terms.subjects, self.source, subject, None, None)
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
        check_subjects(terms, self.source)
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
                self.queries += 1
                events = _load_events(connection, spec, self.source, subject, None, None)
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
