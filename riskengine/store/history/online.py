"""History for online scoring at production speed: :class:`StoreHistoryProvider` (issue 13).

The evaluator asks a provider for one subject's history on one date, several times per
declaration (once per profile with history, per goods item for item subjects). This provider
answers with the one formula of :mod:`riskengine.semantics.history` -- the same numbers and
records as :class:`~riskengine.store.history.lookup.SqlHistoryProvider`, the in-memory provider
and the set-based SQL -- and is built for that call rate:

* **one statement per lookup, compiled once.** Per subject definition (and which of the two
  parts a block has), one ``UNION ALL`` of the subject's non-completed clearances and clean
  controls dated in ``[start, end)`` is built once with bound parameters and reused: SQLAlchemy
  compiles it once per dialect (its compiled cache) and each call only binds values. The
  subject's declarations come from the ``(subject, pk)`` indexes, each one's events of the window
  from the ``(decl_pk, flag, date)`` indexes (revision r0005); a prefix subject
  (``item.hs_code[:4]``) is also bound as a key range, so it uses its index too.
* **one read per subject and declaration** (uncached): the engine asks the provider for the
  lookup function of each declaration (:meth:`StoreHistoryProvider.scoped_history`); it reads a
  subject once, with the widest window and both parts the blocks of that subject definition
  have, and gives each block the value of its own window from those events.
* **on SQLite, the DBAPI cursor**: the statement's SQL text and bind order are compiled once and
  run on the driver's cursor (:class:`_DriverStatement`), the values and dates converted by the
  SQLAlchemy types' own processors; SQLAlchemy's execution machinery cost as much as the query.
  On PostgreSQL the compiled cache is as fast as the bare cursor and is kept.
* **exact incremental terms.** A block's :class:`~riskengine.semantics.history.HistoryTerms` are
  made once per block. A cached subject keeps its events as sorted day numbers with, per block,
  the running sum of the units its clearances count: a window's units are two bisections and a
  subtraction of integers, the value one exact division (:meth:`Weight.value`). No object per
  event is made on the scoring path: the records behind a value are made when something reads
  them (``HistoryValue.lazy``).
* **a cache kept current** (``cache=True``): a subject's events are read once (all dates) and
  kept; writes through the store's writer drop the subjects they touch
  (:mod:`riskengine.store.history.changes`), and on PostgreSQL ``listen=True`` (the default
  there) does the same for every other process's committed writes through ``LISTEN``/``NOTIFY``.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import itertools
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from riskengine import model as m
from riskengine.semantics.history import (
    NO_HISTORY,
    HistoryRecord,
    HistoryTerms,
    HistoryValue,
    history_block,
    history_value,
)
from riskengine.store.engine import StoreError
from riskengine.store.history import changes
from riskengine.store.history.subjects import check_subjects, subject_expr
from riskengine.store.source import StoreSource, native_source

__all__ = ["StoreHistoryProvider", "lookup_statement"]

_log = logging.getLogger(__name__)

#: A subject definition: the (path, prefix) of each ``per`` field.
Spec = tuple[tuple[str, int | None], ...]
_SubjectKey = tuple[Spec, tuple[Any, ...]]

#: Profiles (and blocks) a provider remembers the plans of before it starts afresh.
_MAX_PLANS = 100_000
_ALL_FROM = dt.date(1, 1, 1)
_ALL_TO = dt.date(9999, 12, 31)
_LAST_CHAR = chr(0x10FFFF)


# --- the statement ---------------------------------------------------------------------------


def _ranged(value: Any) -> bool:
    """Whether a prefix value can be bound as a key range ``[value, successor)``."""
    return isinstance(value, str) and value != "" and value[-1] != _LAST_CHAR


def _successor(value: str) -> str:
    """The least string above every string that starts with ``value``."""
    return value[:-1] + chr(ord(value[-1]) + 1)


def lookup_statement(
    spec: Spec,
    source: StoreSource,
    negative: bool = True,
    positive: bool = True,
    ranged: tuple[bool, ...] | None = None,
) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """One subject's events dated in ``[:start, :end)``, in one statement with bound parameters
    ``s0``, ``s1``... (the subject values; ``lo_k``/``hi_k`` the key range of a prefix subject
    whose ``ranged[k]`` is true). Rows: ``kind`` (0 a non-completed clearance, one row per
    reason code; 1 a clean control), ``date``, ``decl_pk``, ``id``, ``reason_code``."""
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    ranged = ranged or tuple(False for _ in spec)
    start = sa.bindparam("start", type_=sa.Date())
    end = sa.bindparam("end", type_=sa.Date())

    def conditions(alias: sa.FromClause, scope: str) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        for k, (path, prefix) in enumerate(spec):
            if not path.startswith(scope):
                continue
            column = source.field(path, alias)
            kind = column.type if prefix is None else sa.String()
            out.append(
                subject_expr(source, path, prefix, alias) == sa.bindparam(f"s{k}", type_=kind)
            )
            if prefix is not None and ranged[k]:
                out.append(column >= sa.bindparam(f"lo{k}", type_=column.type))
                out.append(column < sa.bindparam(f"hi{k}", type_=column.type))
        return out

    header = any(path.startswith("declaration.") for path, _ in spec)
    item = any(path.startswith("item.") for path, _ in spec)

    def part(events: sa.FromClause, flag: sa.ColumnElement[bool]) -> tuple[Any, Any, list[Any]]:
        p = source.declarations.alias("p")
        where: list[Any] = [flag, events.c.date >= start, events.c.date < end]
        if header:
            joined: Any = p.join(events, events.c.decl_pk == p.c.pk)
            where += conditions(p, "declaration.")
        else:
            joined = events.join(p, p.c.pk == events.c.decl_pk)
        if item:
            pi = source.items.alias("pi")
            matching = conditions(pi, "item.")
            if header:  # after the events' own index: a declaration without events is not read
                where.append(
                    sa.exists().where(pi.c.decl_pk == events.c.decl_pk, *matching).select_from(pi)
                )
            else:
                where.append(events.c.decl_pk.in_(sa.select(pi.c.decl_pk).where(*matching)))
        return joined, p, where

    parts: list[sa.Select[Any]] = []
    if negative:
        o = outcomes.alias("o")
        r = reasons.alias("r")
        joined, p, where = part(o, o.c.completed == sa.false())
        parts.append(
            sa.select(
                sa.literal_column("0").label("kind"),
                o.c.date.label("date"),
                o.c.decl_pk.label("decl_pk"),
                p.c.id.label("id"),
                r.c.reason_code.label("reason_code"),
            )
            .select_from(joined.outerjoin(r, r.c.decl_pk == o.c.decl_pk))
            .where(*where)
        )
    if positive:
        c = controls.alias("c")
        joined, p, where = part(c, c.c.violation_found == sa.false())
        parts.append(
            sa.select(
                sa.literal_column("1").label("kind"),
                c.c.date.label("date"),
                c.c.decl_pk.label("decl_pk"),
                p.c.id.label("id"),
                sa.cast(sa.null(), reasons.c.reason_code.type).label("reason_code"),
            )
            .select_from(joined)
            .where(*where)
        )
    if not parts:
        raise ValueError("a lookup needs the negative or the positive part")
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


class _DriverStatement:
    """A lookup statement compiled once for SQLite and run on the DBAPI cursor: its SQL text,
    the bound values in the statement's order through the types' own bind processors (dates as
    SQLAlchemy stores them), and the date column read back through the Date type's result
    processor -- the rows SQLAlchemy's execution gives, without its per-statement work, which
    on SQLite costs about as much as the query itself (the replay in
    ``benchmarks/history_scoring.py`` prints both)."""

    __slots__ = ("binds", "date", "sql")

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        binds = []  # (name given by the lookup, processor) or (None, a constant's value)
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                binds.append((name, process))
            else:  # a constant of the statement (``substr(x, 1, 4)``): processed once
                value = bind.effective_value
                binds.append((None, value if process is None else process(value)))
        self.binds: tuple[tuple[str | None, Any], ...] = tuple(binds)
        date = sa.Date().dialect_impl(dialect).result_processor(dialect, None)
        self.date: Any = date if date is not None else (lambda value: value)

    def run(self, connection: Any, params: dict[str, Any]) -> _Subject:
        args = tuple(
            process if name is None else params[name] if process is None else process(params[name])
            for name, process in self.binds
        )
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, args)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        date = self.date
        return _Subject.from_rows(
            (kind, date(day), pk, ident, code) for kind, day, pk, ident, code in rows
        )


# --- one subject's events --------------------------------------------------------------------


class _Subject:
    """One subject's events, each kind sorted by date: non-completed clearances (day numbers,
    declaration ids, reason codes) and clean controls (day numbers, declaration ids), with the
    running unit sums of the blocks asked about (``sums[plan id]``)."""

    __slots__ = ("cdays", "cids", "creasons", "kdays", "kids", "sums")

    def __init__(
        self,
        cdays: list[int],
        cids: list[str | None],
        creasons: list[tuple[str, ...]],
        kdays: list[int],
        kids: list[str | None],
    ) -> None:
        self.cdays = cdays
        self.cids = cids
        self.creasons = creasons
        self.kdays = kdays
        self.kids = kids
        self.sums: dict[int, list[int]] = {}

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> _Subject:
        clearances: dict[Any, tuple[dt.date, str | None, list[str]]] = {}
        clean: list[tuple[dt.date, str]] = []
        for kind, date, decl_pk, decl_id, code in rows:
            if kind == 0:
                entry = clearances.get(decl_pk)
                if entry is None:
                    entry = clearances[decl_pk] = (date, decl_id, [])
                if code is not None:
                    entry[2].append(code)
            else:
                clean.append((date, decl_id or ""))
        ordered = sorted(clearances.items(), key=lambda kv: (kv[1][0], kv[0]))
        clean.sort()
        return cls(
            [e[0].toordinal() for _, e in ordered],
            [e[1] for _, e in ordered],
            [tuple(sorted(e[2])) for _, e in ordered],
            [d.toordinal() for d, _ in clean],
            [i or None for _, i in clean],
        )

    def running_units(self, plan: _Plan) -> list[int]:
        """Units counted up to each clearance (``[0, u1, u1 + u2, ...]``) under ``plan``."""
        sums = self.sums.get(plan.ident)
        if sums is None:
            units = plan.units
            total = 0
            sums = [0]
            for reasons in self.creasons:
                counted = 0
                for code in reasons:
                    found = units.get(code)
                    if found is not None and found > counted:
                        counted = found
                total += counted
                sums.append(total)
            self.sums[plan.ident] = sums
        return sums


_NO_EVENTS = _Subject([], [], [], [], [])
#: A cached subject that a write touched: read again on its next lookup.
_STALE = _Subject([], [], [], [], [])


class _Plan:
    """What a lookup needs of one history block, made once per block."""

    __slots__ = (
        "block", "empty", "ident", "negative", "positive", "spec", "terms", "units", "window",
    )  # fmt: skip
    _idents = itertools.count()

    def __init__(self, block: m.History) -> None:
        self.block = block  # kept alive: plans are found by the block's id
        self.terms = terms = HistoryTerms.of(block)
        self.spec: Spec = terms.subjects
        self.window = terms.window_days
        self.units = terms.units
        self.negative = terms.negative is not None
        self.positive = terms.positive is not None
        # nothing can count: no part, or an empty window (no query at all)
        self.empty = not (self.negative or self.positive) or self.window <= 0
        self.ident = next(self._idents)

    def value(self, events: _Subject, as_day: int) -> HistoryValue:
        """The history value on the day ``as_day`` (an ordinal) from a subject's events."""
        start = as_day - self.window
        lo = hi = klo = khi = 0
        days = events.cdays
        if days and self.negative and days[0] < as_day and days[-1] >= start:
            lo = bisect.bisect_left(days, start)
            hi = bisect.bisect_left(days, as_day)
        days = events.kdays
        if days and self.positive and days[0] < as_day and days[-1] >= start:
            klo = bisect.bisect_left(days, start)
            khi = bisect.bisect_left(days, as_day)
        if hi == lo and khi == klo:
            return NO_HISTORY
        terms = self.terms
        negative = 0.0
        if hi > lo:
            sums = events.running_units(self)
            negative = terms.negative_value(sums[hi] - sums[lo])
        positive = terms.positive_value(khi - klo) if khi > klo else 0.0
        return HistoryValue.lazy(
            negative, positive, lambda: _records(terms, events, lo, hi, klo, khi)
        )


def _records(
    terms: HistoryTerms, events: _Subject, lo: int, hi: int, klo: int, khi: int
) -> tuple[HistoryRecord, ...]:
    day = dt.date.fromordinal
    clearances = [(day(events.cdays[n]), events.cids[n], events.creasons[n]) for n in range(lo, hi)]
    controls = [(day(events.kdays[n]), events.kids[n]) for n in range(klo, khi)]
    return history_value(terms, clearances, controls).records


# --- the provider ----------------------------------------------------------------------------


class StoreHistoryProvider:
    """The evaluator's history provider over the store, for online scoring (module docs).

    ``engine``: an Engine (each lookup takes a pooled connection) or a Connection (every lookup
    runs on it: one per worker thread, or a transaction's -- then not shared between threads).
    ``cache=False``: one indexed statement per lookup, reading only the window's events.
    ``cache=True``: a subject's events are read once and kept (at most ``cache_size`` subjects
    before the cache is emptied); :meth:`preload` reads every subject of a block at once. The
    cache follows the writer's changes in this process; with ``listen=True`` (default: on
    PostgreSQL when caching) also every other process's, through ``LISTEN``/``NOTIFY``. Safe to
    share between threads. :meth:`close` stops the listener.
    """

    def __init__(
        self,
        engine: sa.Engine | sa.Connection,
        source: StoreSource | None = None,
        *,
        cache: bool = True,
        cache_size: int = 200_000,
        listen: bool | None = None,
    ) -> None:
        # a Connection: every lookup runs on it (one per worker; or inside a transaction)
        self._connection = engine if isinstance(engine, sa.Connection) else None
        self.engine: sa.Engine = engine.engine if isinstance(engine, sa.Connection) else engine
        engine = self.engine
        self.source = source or native_source()
        self.cache = cache
        self.cache_size = cache_size
        self.queries = 0  # database round trips for history, for tests and statistics
        self.closed = False
        self.listener_error: BaseException | None = None
        self._plans: dict[int, _Plan] = {}
        #: Per subject definition: the widest window and the parts of the blocks seen with it.
        self._widest: dict[Spec, tuple[int, bool, bool]] = {}
        self._by_profile: dict[int, tuple[Any, _Plan | None]] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}
        #: On SQLite, lookups run on the DBAPI cursor (:class:`_DriverStatement`).
        self._sqlite = engine.dialect.name == "sqlite"
        self._driver: dict[tuple[Any, ...], _DriverStatement] = {}
        self._cache: dict[Spec, dict[tuple[Any, ...], _Subject]] = {}
        self._complete: set[Spec] = set()
        self._generation = 0
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        changes.register(self)
        if listen is None:
            listen = cache and engine.dialect.name == "postgresql"
        if listen:
            if engine.dialect.name != "postgresql":
                raise StoreError(
                    f"listen=True needs PostgreSQL (LISTEN/NOTIFY); {engine.dialect.name} has "
                    "no notifications: a cache there follows this process's writes only"
                )
            if not cache:
                raise StoreError("listen=True keeps a cache current: it needs cache=True")
            self._listener = _Listener(self)

    # -- the protocol ---------------------------------------------------------------------

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The capped history values of ``subject`` on ``as_of`` and the records behind them."""
        known = self._by_profile.get(id(profile))
        if known is not None and known[0] is profile:
            plan = known[1]
        else:
            plan = self._profile_plan(profile)
        if plan is None or plan.empty or None in subject:
            return NO_HISTORY
        if not self.cache:
            as_day = as_of.toordinal()
            start = as_of - dt.timedelta(days=plan.window)
            events = self._read(plan.spec, subject, start, as_of, plan.negative, plan.positive)
            return plan.value(events, as_day)
        table = self._cache.get(plan.spec)
        found = table.get(subject) if table is not None else None
        if found is None or found is _STALE:
            if found is None and plan.spec in self._complete:
                found = _NO_EVENTS
            else:
                found = self._load(plan.spec, subject)
        return plan.value(found, as_of.toordinal())

    def scoped_history(self) -> Callable[[Any, tuple[Any, ...], dt.date], HistoryValue]:
        """The lookup function for the profiles of **one declaration** (``Engine.score`` asks
        for one per declaration): :meth:`history` itself with ``cache=True``. Uncached, a
        subject is read once per declaration and date, not once per profile: the first lookup
        reads the widest window and both parts that the blocks seen with its subject definition
        have (the sample profiles ask for ``importer.id`` over 365 days three times and over
        1,095 days once), and each block's value is computed from those events within its own
        window -- the same value, fewer round trips. Every lookup of the declaration then sees
        the store as of that one read. Not to be kept across declarations: the next one would
        not see writes made meanwhile."""
        if self.cache:
            return self.history
        memo: dict[tuple[Spec, tuple[Any, ...], dt.date], tuple[int, bool, bool, _Subject]] = {}

        def history(profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
            known = self._by_profile.get(id(profile))
            if known is not None and known[0] is profile:
                plan = known[1]
            else:
                plan = self._profile_plan(profile)
            if plan is None or plan.empty or None in subject:
                return NO_HISTORY
            if self.cache:  # pragma: no cover - cache is never switched on afterwards
                return self.history(profile, subject, as_of)
            key = (plan.spec, subject, as_of)
            found = memo.get(key)
            if (
                found is None
                or found[0] < plan.window
                or (plan.negative and not found[1])
                or (plan.positive and not found[2])
            ):
                window, negative, positive = self._widest[plan.spec]
                if found is not None:  # a block first seen now: wider, or another part
                    window = max(window, found[0], plan.window)
                    negative = negative or found[1] or plan.negative
                    positive = positive or found[2] or plan.positive
                start = as_of - dt.timedelta(days=window)
                events = self._read(plan.spec, subject, start, as_of, negative, positive)
                found = memo[key] = (window, negative, positive, events)
            return plan.value(found[3], as_of.toordinal())

        return history

    # -- reading ----------------------------------------------------------------------------

    def _profile_plan(self, profile: Any) -> _Plan | None:
        """The plan of a profile's history block (``None``: no block), remembered by the
        profile's identity (the profile kept alive with it, so its id stays its own)."""
        if len(self._by_profile) >= _MAX_PLANS:  # bundles swapped many times: start afresh
            self._by_profile.clear()
            self._plans.clear()
        block = history_block(profile)
        plan = None
        if block is not None:
            plan = self._plans.get(id(block))
            if plan is None or plan.block is not block:
                plan = self._plan(block)
        self._by_profile[id(profile)] = (profile, plan)
        return plan

    def _plan(self, block: m.History) -> _Plan:
        plan = _Plan(block)
        check_subjects(plan.terms, self.source)
        self._plans[id(block)] = plan
        if not plan.empty:
            window, negative, positive = self._widest.get(plan.spec, (0, False, False))
            self._widest[plan.spec] = (
                max(window, plan.window),
                negative or plan.negative,
                positive or plan.positive,
            )
        return plan

    def statement(
        self, spec: Spec, negative: bool, positive: bool, ranged: tuple[bool, ...]
    ) -> Any:
        """The lookup statement for a subject definition, built once."""
        key = (spec, negative, positive, ranged)
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = lookup_statement(
                spec, self.source, negative, positive, ranged
            )
        return found

    def _read(
        self,
        spec: Spec,
        subject: Sequence[Any],
        start: dt.date,
        end: dt.date,
        negative: bool = True,
        positive: bool = True,
    ) -> _Subject:
        params: dict[str, Any] = {"start": start, "end": end}
        ranged = []
        for k, ((_path, prefix), value) in enumerate(zip(spec, subject, strict=True)):
            params[f"s{k}"] = value
            use = prefix is not None and _ranged(value)
            ranged.append(use)
            if use:
                params[f"lo{k}"] = value
                params[f"hi{k}"] = _successor(value)
        key = (spec, negative, positive, tuple(ranged))
        self.queries += 1
        if self._sqlite:
            found = self._driver.get(key)
            if found is None:
                statement = self.statement(spec, negative, positive, tuple(ranged))
                found = self._driver[key] = _DriverStatement(statement, self.engine.dialect)
            if self._connection is not None:
                return found.run(self._connection.connection.driver_connection, params)
            raw = self.engine.raw_connection()
            try:
                return found.run(raw.driver_connection, params)
            finally:
                raw.close()
        statement = self.statement(*key)
        if self._connection is not None:
            rows = self._connection.execute(statement, params).all()
        else:
            with self.engine.connect() as connection:
                rows = connection.execute(statement, params).all()
        return _Subject.from_rows(rows)

    def _load(self, spec: Spec, subject: tuple[Any, ...]) -> _Subject:
        """Read a subject's events (all dates) and keep them, unless a write touched the
        cache meanwhile (the events read may predate it)."""
        generation = self._generation
        events = self._read(spec, subject, _ALL_FROM, _ALL_TO)
        with self._lock:
            if self._generation == generation:
                table = self._cache.setdefault(spec, {})
                if len(table) >= self.cache_size and spec not in self._complete:
                    table.clear()
                table[subject] = events
        return events

    def preload(self, profile: Any) -> int:
        """Read the events of every subject of ``profile``'s history block (or a ``History``
        block) at once and keep them: later lookups of that subject definition need no query.
        Needs ``cache=True``. Returns the number of subjects with events."""
        if not self.cache:
            raise StoreError("preload needs a provider made with cache=True")
        block = profile if isinstance(profile, m.History) else history_block(profile)
        if block is None:
            return 0
        plan = self._plans.get(id(block)) or self._plan(block)
        from riskengine.store.history.lookup import _load_all_events

        generation = self._generation
        self.queries += 2
        if self._connection is not None:
            loaded = _load_all_events(self._connection, plan.terms, self.source)
        else:
            with self.engine.connect() as connection:
                loaded = _load_all_events(connection, plan.terms, self.source)
        table = {
            subject: _Subject(
                [d.toordinal() for d in e.clearance_dates],
                [c[1] for c in e.clearances],
                [tuple(c[2]) for c in e.clearances],
                [d.toordinal() for d in e.control_dates],
                [c[1] for c in e.controls],
            )
            for subject, e in loaded.items()
        }
        with self._lock:
            if self._generation != generation:
                return len(table)  # a write came in meanwhile: keep the lazy cache instead
            self._cache[plan.spec] = table
            self._complete.add(plan.spec)
        return len(table)

    # -- keeping the cache current ----------------------------------------------------------

    def clear_cache(self) -> None:
        """Forget every cached subject."""
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._complete.clear()

    def forget_subjects(self, keys: Iterable[_SubjectKey]) -> None:
        """Drop the cached events of these (subject definition, subject) pairs: their next
        lookup reads them again."""
        with self._lock:
            self._generation += 1
            for spec, subject in keys:
                table = self._cache.get(spec)
                if table is None:
                    continue
                if subject in table:
                    table[subject] = _STALE
                elif spec in self._complete:
                    table[subject] = _STALE  # preloaded: "absent" meant "no events"

    def subjects_of_declarations(
        self, connection: sa.Connection, keys: Sequence[int]
    ) -> set[_SubjectKey]:
        """The cached subject definitions' subjects that the declarations ``keys`` have (read
        on ``connection``, so inside a writer's transaction too)."""
        specs = list(self._cache)
        if not specs:
            return set()
        source = self.source
        header_paths = sorted({p for s in specs for p, _ in s if p.startswith("declaration.")})
        item_paths = sorted({p for s in specs for p, _ in s if p.startswith("item.")})
        d = source.declarations
        headers: dict[int, dict[str, Any]] = {}
        items: dict[int, list[dict[str, Any]]] = {}
        for chunk in range(0, len(keys), 500):
            part = list(keys[chunk : chunk + 500])
            query = sa.select(d.c.pk, *(source.field(p) for p in header_paths)).where(
                d.c.pk.in_(part)
            )
            for row in connection.execute(query):
                headers[row[0]] = dict(zip(header_paths, row[1:], strict=True))
            if item_paths:
                i = source.items
                query = sa.select(i.c.decl_pk, *(source.field(p) for p in item_paths)).where(
                    i.c.decl_pk.in_(part)
                )
                for row in connection.execute(query):
                    items.setdefault(row[0], []).append(dict(zip(item_paths, row[1:], strict=True)))
        found: set[_SubjectKey] = set()
        for pk, header in headers.items():
            rows = items.get(pk, [])
            for spec in specs:
                for subject in _subjects(spec, header, rows):
                    found.add((spec, subject))
        return found

    def sync(self, timeout: float = 10.0) -> None:
        """Return once every change committed before this call has been applied to the cache
        (PostgreSQL with ``listen``; elsewhere nothing to wait for)."""
        if self._listener is not None:
            self._listener.sync(timeout)

    def close(self) -> None:
        """Stop listening (the cache stays as it is)."""
        self.closed = True
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def __enter__(self) -> StoreHistoryProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listener_failed(self, error: BaseException) -> None:
        """The notifications stopped: a cache can no longer be trusted, so every lookup reads
        the store from now on (``listener_error`` says why)."""
        _log.error("history notifications stopped (%s): caching switched off", error)
        self.listener_error = error
        self.cache = False
        self.clear_cache()


def _subjects(
    spec: Spec, header: dict[str, Any], items: Sequence[dict[str, Any]]
) -> set[tuple[Any, ...]]:
    def value(row: dict[str, Any], path: str, prefix: int | None) -> Any:
        found = row.get(path)
        if prefix is not None and isinstance(found, str):
            return found[:prefix]
        return found

    item_level = any(path.startswith("item.") for path, _ in spec)
    out = set()
    for item in items if item_level else [{}]:
        subject = tuple(
            value(item if path.startswith("item.") else header, path, prefix)
            for path, prefix in spec
        )
        if all(v is not None for v in subject):
            out.add(subject)
    return out


# --- PostgreSQL notifications ----------------------------------------------------------------


class _Listener:
    """One connection in ``LISTEN riskengine_history`` on a daemon thread."""

    def __init__(self, provider: StoreHistoryProvider) -> None:
        # a weak reference: a provider nobody uses any more is collected, and its thread ends
        self._provider = weakref.ref(provider)
        self.engine = provider.engine
        self._stop = threading.Event()
        self._waiting: dict[str, threading.Event] = {}
        raw = provider.engine.raw_connection()
        connection: Any = raw.driver_connection
        raw.detach()  # its own connection, never returned to the pool
        self._raw = raw
        connection.autocommit = True
        self.schema = connection.execute("SELECT current_schema()").fetchone()[0]
        connection.execute(f"LISTEN {changes.CHANNEL}")
        self._connection = connection
        self._thread = threading.Thread(
            target=self._run, name="riskengine-history-listen", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self._provider() is not None:
                for notice in self._connection.notifies(timeout=0.25):
                    self._handle(notice.payload)
        except BaseException as error:  # the connection failed: say so, stop caching
            provider = self._provider()
            if not self._stop.is_set() and provider is not None:
                provider._listener_failed(error)
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
                self._raw.close()

    def _handle(self, payload: str) -> None:
        schema, _, rest = payload.partition(":")
        if schema != self.schema:
            return  # another store in the same database
        if rest.startswith("sync:"):
            waiting = self._waiting.pop(rest[5:], None)
            if waiting is not None:
                waiting.set()
            return
        provider = self._provider()
        if provider is None:
            return
        if rest == "*":
            provider.clear_cache()
            return
        keys = [int(k) for k in rest.split(",") if k]
        with self.engine.connect() as connection:
            touched = provider.subjects_of_declarations(connection, keys)
        provider.forget_subjects(touched)

    def sync(self, timeout: float) -> None:
        token = uuid.uuid4().hex
        done = self._waiting[token] = threading.Event()
        with self.engine.begin() as connection:
            connection.execute(
                sa.select(sa.func.pg_notify(changes.CHANNEL, f"{self.schema}:sync:{token}"))
            )
        if not done.wait(timeout):
            self._waiting.pop(token, None)
            raise StoreError(f"no history notification came back within {timeout} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
