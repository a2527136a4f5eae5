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
    "history_select_many",
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


class day_number(FunctionElement[int]):
    """A date as a whole number of days in each dialect (consecutive dates give consecutive
    numbers): the order key of the history windows, so that ``RANGE BETWEEN N PRECEDING AND 1
    PRECEDING`` is exactly ``[as_of - N days, as_of)``."""

    name = "day_number"
    inherit_cache = True
    type = sa.Integer()


@compiles(day_number)
def _day_number_default(element: day_number, compiler: Any, **kw: Any) -> str:
    (date,) = list(element.clauses)
    return f"(CAST({compiler.process(date, **kw)} AS DATE) - DATE '1970-01-01')"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    # julianday() of a date is N.5 (midnight); + 0.5 and truncating gives the civil day number,
    # also for a 'YYYY-MM-DD HH:MM:SS' text
    (date,) = list(element.clauses)
    return f"CAST(julianday({compiler.process(date, **kw)}) + 0.5 AS INTEGER)"


@compiles(day_number, "duckdb")
def _day_number_duckdb(element: day_number, compiler: Any, **kw: Any) -> str:
    (date,) = list(element.clauses)
    return f"date_diff('day', DATE '1970-01-01', CAST({compiler.process(date, **kw)} AS DATE))"


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
#
# One timeline per subject definition: the targets (each declaration of the period, or each
# goods item when a subject is an item field, with its subject values and its date) and the
# events (non-completed clearances with their scaled coefficient, clean controls) in one UNION
# ALL, partitioned by subject and ordered by day number. For each target, a window sum over
# ``RANGE BETWEEN window PRECEDING AND 1 PRECEDING`` adds up exactly the events of its subject
# dated in [as_of - window, as_of): same-day events are outside the frame, an event dated exactly
# window days before is inside, and targets add 0. One sort per subject definition instead of a
# range join whose cost grew with the square of a busy subject's activity. Several blocks with
# the same subjects share the sort: each adds its own window sums.
#
# No DISTINCT over the targets: on PostgreSQL 15 a parallel hash aggregate of the (date, subject)
# keys took minutes at 1 M declarations (its final hash table degenerates), and header-subject
# targets per declaration already give most of the reduction.

_ZERO = sa.literal_column("0", sa.BigInteger)
_ONE = sa.literal_column("1", sa.BigInteger)


def _preceding(window: int) -> Any:
    """The frame ``RANGE BETWEEN window PRECEDING AND 1 PRECEDING`` with both offsets written
    into the SQL (SQLAlchemy 2.1 binds them as parameters, and SQLite then evaluates the frame
    many times more slowly: 4.8 s instead of 0.1 s for six blocks over 5,000 declarations)."""
    try:
        from sqlalchemy.sql.elements import FrameClause, FrameClauseType
    except ImportError:  # SQLAlchemy 2.0 writes integer offsets into the SQL itself
        return (-window, -1)

    def offset(value: int) -> Any:
        return sa.bindparam(None, value, sa.Integer(), literal_execute=True)

    return FrameClause(
        offset(window), offset(1), FrameClauseType.PRECEDING, FrameClauseType.PRECEDING
    )


def _counts_negative(terms: HistoryTerms) -> bool:
    return terms.negative_max is not None and bool(terms.units) and terms.window_days > 0


def _counts_positive(terms: HistoryTerms) -> bool:
    return terms.positive_max is not None and terms.window_days > 0


def _event_selects(
    blocks: Sequence[HistoryTerms],
    source: StoreSource,
    since: dt.date | None,
    until: dt.date | None,
) -> list[sa.Select[Any]]:
    """The event rows of the timeline, columns as the targets': ``decl_pk``, ``item_no`` and
    ``as_of`` NULL, the subject values ``s0``... of the event's declaration (never NULL), ``day``,
    ``units0``... (a clearance's scaled coefficient for each block) and ``clean`` (1 for a clean
    control). Every block has the subjects of ``blocks[0]``.

    Only events dated in [since, until) are read: nothing else can fall in a target's window.
    """
    terms = blocks[0]
    negative = [k for k, b in enumerate(blocks) if _counts_negative(b)]
    positive = any(_counts_positive(b) for b in blocks)
    if not negative and not positive:
        return []
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")

    def dated(column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        out = []
        if since is not None:
            out.append(column >= since)
        if until is not None:
            out.append(column < until)
        return out

    def with_subject(
        base: sa.FromClause, decl_pk: sa.ColumnElement[Any], decls: sa.Select[Any]
    ) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
        """``base`` joined with the event's declaration (and its distinct item subject values,
        read only for the declarations ``decls`` that have such events)."""
        p = source.declarations.alias("p")
        joined = base.join(p, p.c.pk == decl_pk)
        item_keys = None
        if terms.item_subjects:
            pi = source.items.alias("pi")
            item_keys = (
                sa.select(
                    pi.c.decl_pk,
                    *(
                        _subject_expr(source, path, prefix, pi).label(f"s{k}")
                        for k, (path, prefix) in enumerate(terms.subjects)
                        if path.startswith("item.")
                    ),
                )
                .where(pi.c.decl_pk.in_(decls))
                .distinct()
                .subquery("item_keys")
            )
            joined = joined.join(item_keys, item_keys.c.decl_pk == p.c.pk)
        subjects = [
            item_keys.c[f"s{k}"]
            if item_keys is not None and path.startswith("item.")
            else _subject_expr(source, path, prefix, p)
            for k, (path, prefix) in enumerate(terms.subjects)
        ]
        return joined, subjects

    def row(
        subjects: list[sa.ColumnElement[Any]],
        date: sa.ColumnElement[Any],
        units: Sequence[sa.ColumnElement[Any]],
        clean: sa.ColumnElement[Any],
    ) -> list[sa.ColumnElement[Any]]:
        return [
            sa.cast(sa.null(), sa.Integer).label("decl_pk"),
            *([sa.cast(sa.null(), sa.Integer).label("item_no")] if terms.item_subjects else []),
            sa.cast(sa.null(), sa.Date).label("as_of"),
            *(s.label(f"s{k}") for k, s in enumerate(subjects)),
            day_number(date).label("day"),
            *(u.label(f"units{k}") for k, u in zip(negative, units, strict=True)),
            clean.label("clean"),
        ]

    out: list[sa.Select[Any]] = []
    if negative:
        r = reasons.alias("r")
        codes = sorted({code for k in negative for code in blocks[k].units})
        scored = (
            sa.select(
                r.c.decl_pk,
                *(
                    # the highest coefficient among the clearance's codes that block k lists
                    sa.func.max(
                        sa.case(
                            {
                                code: sa.literal(units, sa.BigInteger)
                                for code, units in blocks[k].units.items()
                            },
                            value=r.c.reason_code,
                        )
                    ).label(f"units{k}")
                    for k in negative
                ),
            )
            .where(r.c.reason_code.in_(codes))
            .group_by(r.c.decl_pk)
            .subquery("scored")
        )
        o = outcomes.alias("o")
        io = outcomes.alias("io")
        decls = sa.select(io.c.decl_pk).where(io.c.completed.is_(False), *dated(io.c.date))
        joined, subjects = with_subject(
            o.join(scored, scored.c.decl_pk == o.c.decl_pk), o.c.decl_pk, decls
        )
        units: list[sa.ColumnElement[Any]] = [scored.c[f"units{k}"] for k in negative]
        if len(negative) > 1:  # a block that lists none of the clearance's codes: NULL -> 0
            units = [sa.func.coalesce(u, _ZERO) for u in units]
        out.append(
            sa.select(*row(subjects, o.c.date, units, _ZERO))
            .select_from(joined)
            .where(o.c.completed.is_(False), *dated(o.c.date), *(s.is_not(None) for s in subjects))
        )
    if positive:
        c = controls.alias("c")
        ic = controls.alias("ic")
        decls = sa.select(ic.c.decl_pk).where(ic.c.violation_found.is_(False), *dated(ic.c.date))
        joined, subjects = with_subject(c, c.c.decl_pk, decls)
        out.append(
            sa.select(*row(subjects, c.c.date, [_ZERO] * len(negative), _ONE))
            .select_from(joined)
            .where(
                c.c.violation_found.is_(False),
                *dated(c.c.date),
                *(s.is_not(None) for s in subjects),
            )
        )
    return out


@attrs.frozen
class _Rows:
    """The rows of a set-based history query: what to select from, the target columns, and for
    each block its ``negative_units`` and ``clean_controls`` expressions."""

    source: sa.FromClause
    decl_pk: sa.ColumnElement[Any]
    item_no: sa.ColumnElement[Any]
    as_of: sa.ColumnElement[Any]
    values: list[tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]]


def _history_rows(
    blocks: Sequence[HistoryTerms],
    source: StoreSource,
    start: dt.date | None,
    end: dt.date | None,
    items: bool = True,
) -> _Rows:
    """One row per goods item of the declarations dated ``start``..``end`` (a declaration
    without items: one row, ``item_no`` NULL) with the history of each block (all with the same
    subjects)."""
    terms = blocks[0]
    for block in blocks:
        _check_subjects(block, source)
    d = source.declarations.alias("d")
    i = source.items.alias("i")
    n = len(terms.subjects)
    negative = [k for k, b in enumerate(blocks) if _counts_negative(b)]
    # Header subjects: one target per declaration, its items joined afterwards; item subjects:
    # one target per goods item.
    per_item = terms.item_subjects
    targets = sa.select(
        d.c.pk.label("decl_pk"),
        *([i.c.item_no.label("item_no")] if per_item else []),
        d.c.date.label("as_of"),
        *(
            _subject_expr(source, path, prefix, i if path.startswith("item.") else d).label(f"s{k}")
            for k, (path, prefix) in enumerate(terms.subjects)
        ),
        day_number(d.c.date).label("day"),
        *(_ZERO.label(f"units{k}") for k in negative),
        _ZERO.label("clean"),
    ).select_from(d.outerjoin(i, i.c.decl_pk == d.c.pk) if per_item else d)
    if start is not None:
        targets = targets.where(d.c.date >= start)
    if end is not None:
        targets = targets.where(d.c.date <= end)
    since = None
    windows = [b.window_days for b in blocks if _counts_negative(b) or _counts_positive(b)]
    if start is not None and windows:
        try:
            since = start - dt.timedelta(days=max(windows))
        except OverflowError:
            since = None  # the window reaches before the first representable date
    events = _event_selects(blocks, source, since, end)
    values: list[tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]]
    if not events:
        rows = targets.subquery("targets")
        values = [(_ZERO, _ZERO)] * len(blocks)
    else:
        timeline = sa.union_all(targets, *events).subquery("timeline")

        def over(window: int) -> dict[str, Any]:
            return {
                "partition_by": [timeline.c[f"s{k}"] for k in range(n)],
                "order_by": timeline.c.day,
                "range_": _preceding(window),
            }

        sums: dict[str, sa.ColumnElement[Any]] = {}
        names: list[tuple[str | None, str | None]] = []
        for k, block in enumerate(blocks):
            neg = pos = None
            if _counts_negative(block):
                neg = f"negative_units{k}"
                sums[neg] = sa.func.sum(timeline.c[f"units{k}"]).over(**over(block.window_days))
            if _counts_positive(block):
                pos = f"clean_controls_w{block.window_days}"  # shared by blocks with this window
                sums.setdefault(pos, sa.func.sum(timeline.c.clean).over(**over(block.window_days)))
            names.append((neg, pos))
        # the filter on targets must wait until the windows are computed over the events
        windowed = sa.select(
            timeline.c.decl_pk,
            *([timeline.c.item_no] if per_item else []),
            timeline.c.as_of,
            *(column.label(name) for name, column in sums.items()),
        ).subquery("windowed")
        rows = sa.select(windowed).where(windowed.c.decl_pk.is_not(None)).subquery("history")

        def value(name: str | None) -> sa.ColumnElement[Any]:
            return _ZERO if name is None else sa.func.coalesce(rows.c[name], 0)

        values = [(value(neg), value(pos)) for neg, pos in names]
    if per_item:
        return _Rows(rows, rows.c.decl_pk, rows.c.item_no, rows.c.as_of, values)
    if not items:  # header subjects, one row per declaration asked for
        no_item = sa.cast(sa.null(), sa.Integer)
        return _Rows(rows, rows.c.decl_pk, no_item, rows.c.as_of, values)
    goods = source.items.alias("items")
    return _Rows(
        rows.outerjoin(goods, goods.c.decl_pk == rows.c.decl_pk),
        rows.c.decl_pk,
        goods.c.item_no,
        rows.c.as_of,
        values,
    )


def _history_values(
    terms: HistoryTerms,
    negative_units: sa.ColumnElement[Any],
    clean_controls: sa.ColumnElement[Any],
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """negative_history and positive_history computed in SQL from the integer columns."""
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
    return negative_sql, positive_sql


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

    The query sorts the targets and the events once by (subject, date) and sums each target's
    window with window functions; its cost grows like that sort. Several of these queries may be
    joined in one statement (a backtest does): each keeps its own window and terms.
    """
    terms = block if isinstance(block, HistoryTerms) else HistoryTerms.of(block)
    rows = _history_rows([terms], source or native_source(), start, end)
    [(negative_units, clean_controls)] = rows.values
    negative_sql, positive_sql = _history_values(terms, negative_units, clean_controls)
    return sa.select(
        rows.decl_pk.label("decl_pk"),
        rows.item_no.label("item_no"),
        rows.as_of.label("as_of"),
        negative_units.label("negative_units"),
        clean_controls.label("clean_controls"),
        negative_sql.label("negative_history"),
        positive_sql.label("positive_history"),
    ).select_from(rows.source)


def history_select_many(
    blocks: Sequence[m.History | HistoryTerms],
    source: StoreSource | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    items: bool = True,
) -> sa.Select[Any]:
    """Like :func:`history_select` for several history blocks with the **same subjects** (windows,
    reasons, coefficients and caps may differ), in one query that reads and sorts the targets
    and events once. With ``items=False`` and header subjects only, one row per declaration
    (``item_no`` NULL) instead of one per goods item: the values are the same for every item.

    Columns: ``decl_pk``, ``item_no``, ``as_of``, then for block ``k`` (in the order given)
    ``negative_units_k``, ``clean_controls_k``, ``negative_history_k``, ``positive_history_k``,
    each equal to the column of that name in ``history_select(blocks[k], ...)``.
    """
    terms = [b if isinstance(b, HistoryTerms) else HistoryTerms.of(b) for b in blocks]
    if not terms:
        raise ValueError("history_select_many needs at least one history block")
    if any(t.subjects != terms[0].subjects for t in terms):
        raise ValueError("history_select_many needs blocks with the same subjects")
    rows = _history_rows(terms, source or native_source(), start, end, items)
    out: list[sa.ColumnElement[Any]] = [
        rows.decl_pk.label("decl_pk"),
        rows.item_no.label("item_no"),
        rows.as_of.label("as_of"),
    ]
    for k, (t, (negative_units, clean_controls)) in enumerate(zip(terms, rows.values, strict=True)):
        negative_sql, positive_sql = _history_values(t, negative_units, clean_controls)
        out += [
            negative_units.label(f"negative_units_{k}"),
            clean_controls.label(f"clean_controls_{k}"),
            negative_sql.label(f"negative_history_{k}"),
            positive_sql.label(f"positive_history_{k}"),
        ]
    return sa.select(*out).select_from(rows.source)


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
