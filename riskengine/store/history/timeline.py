"""History of every declaration of a date range in one set-based query (backtests).

The numbers are those of :mod:`riskengine.semantics.history`: the query sums each target's
window of integer units and clean controls, and turns them into ``negative_history`` and
``positive_history`` with the formula's SQL mirror
(:func:`~riskengine.semantics.history.weight_sql`), so a backtest sees the very doubles the
evaluator's providers return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from riskengine import model as m
from riskengine.semantics.history import HistoryTerms, history_block, weight_sql
from riskengine.store.history.subjects import check_subjects, day_number, subject_expr
from riskengine.store.source import StoreSource, native_source

__all__ = ["RangeHistory", "history_for_range", "history_select", "history_select_many"]


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


class planner_certain(FunctionElement[bool]):
    """A condition the planner is told holds for (nearly) every row: SQLite's
    ``likelihood(x, 1.0)``, which returns ``x`` unchanged and only changes the row estimate; ``x``
    itself on the other dialects. See :func:`_history_rows` (``period_hint``)."""

    name = "planner_certain"
    inherit_cache = True
    type = sa.Boolean()


@compiles(planner_certain)
def _planner_certain_default(element: planner_certain, compiler: Any, **kw: Any) -> str:
    (condition,) = list(element.clauses)
    return str(compiler.process(condition, **kw))


@compiles(planner_certain, "sqlite")
def _planner_certain_sqlite(element: planner_certain, compiler: Any, **kw: Any) -> str:
    (condition,) = list(element.clauses)
    return f"likelihood({compiler.process(condition, **kw)}, 1.0)"


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
    negative = [k for k, b in enumerate(blocks) if b.counts_negative]
    positive = any(b.counts_positive for b in blocks)
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
                        subject_expr(source, path, prefix, pi).label(f"s{k}")
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
            else subject_expr(source, path, prefix, p)
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
    period_hint: bool = False,
) -> _Rows:
    """One row per goods item of the declarations dated ``start``..``end`` (a declaration
    without items: one row, ``item_no`` NULL) with the history of each block (all with the same
    subjects).

    ``period_hint``: tell the planner that the period's lower bound selects (nearly) every
    declaration (:class:`planner_certain`; SQLite's ``likelihood``, nothing elsewhere). The rows
    and values are the same either way. The backtest asks for it on a SQLite store that has
    statistics (``sqlite_stat1``): with them SQLite estimates the window query's output at a few
    rows and joins it to the goods items by scanning it once per item instead of through an
    automatic index (docs/performance.md, "SQLite after ANALYZE")."""
    terms = blocks[0]
    for block in blocks:
        check_subjects(block, source)
    d = source.declarations.alias("d")
    i = source.items.alias("i")
    n = len(terms.subjects)
    negative = [k for k, b in enumerate(blocks) if b.counts_negative]
    # Header subjects: one target per declaration, its items joined afterwards; item subjects:
    # one target per goods item.
    per_item = terms.item_subjects
    targets = sa.select(
        d.c.pk.label("decl_pk"),
        *([i.c.item_no.label("item_no")] if per_item else []),
        d.c.date.label("as_of"),
        *(
            subject_expr(source, path, prefix, i if path.startswith("item.") else d).label(f"s{k}")
            for k, (path, prefix) in enumerate(terms.subjects)
        ),
        day_number(d.c.date).label("day"),
        *(_ZERO.label(f"units{k}") for k in negative),
        _ZERO.label("clean"),
    ).select_from(d.outerjoin(i, i.c.decl_pk == d.c.pk) if per_item else d)
    if start is not None:
        from_start = d.c.date >= start
        targets = targets.where(planner_certain(from_start) if period_hint else from_start)
    if end is not None:
        targets = targets.where(d.c.date <= end)
    since = None
    windows = [b.window_days for b in blocks if b.counts_negative or b.counts_positive]
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
            if block.counts_negative:
                neg = f"negative_units{k}"
                sums[neg] = sa.func.sum(timeline.c[f"units{k}"]).over(**over(block.window_days))
            if block.counts_positive:
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
) -> tuple[sa.ColumnElement[float], sa.ColumnElement[float]]:
    """negative_history and positive_history computed in SQL from the integer columns: the
    formula's SQL mirror, the same doubles as the Python providers."""
    return weight_sql(terms.negative, negative_units), weight_sql(terms.positive, clean_controls)


def history_select(
    block: m.History | HistoryTerms,
    source: StoreSource | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    period_hint: bool = False,
) -> sa.Select[Any]:
    """One query giving the history of every goods item of the declarations dated
    ``start``..``end`` (inclusive; ``None`` = open). ``period_hint``: a planner hint for SQLite
    stores with statistics, the same rows (see ``_history_rows``).

    Columns: ``decl_pk``, ``item_no`` (``NULL`` for a declaration without items), ``as_of`` (the
    declaration's date), ``negative_units`` (Σ scaled coefficients, before per_case and the cap),
    ``clean_controls``, and ``negative_history`` / ``positive_history`` computed in SQL as
    ``DOUBLE``, equal bit for bit to the Python providers' values (the formula's SQL mirror,
    :func:`riskengine.semantics.history.weight_sql`).

    The query sorts the targets and the events once by (subject, date) and sums each target's
    window with window functions; its cost grows like that sort. Several of these queries may be
    joined in one statement (a backtest does): each keeps its own window and terms.
    """
    terms = block if isinstance(block, HistoryTerms) else HistoryTerms.of(block)
    rows = _history_rows([terms], source or native_source(), start, end, period_hint=period_hint)
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
    *,
    period_hint: bool = False,
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
    rows = _history_rows(terms, source or native_source(), start, end, items, period_hint)
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
                terms.negative_value(units),
                terms.positive_value(clean),
            )
        yield RangeHistory(decl_pk, item_no, as_of, found[0], found[1], units, clean)
