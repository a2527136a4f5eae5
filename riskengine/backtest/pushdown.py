"""Backtests pushed down to SQL: many profiles in one pass, metrics aggregated in the engine.

The query is SQLAlchemy Core over a :class:`~riskengine.store.source.StoreSource` (the store's
own tables or a user's, with canonical column names), in layers:

1. ``rows``: one row per goods item of every declaration in the period (declarations without
   items give one row whose item fields are NULL), with the history columns of each profile;
2. ``keyed`` joined with ``guards``, the *candidate join*: each row looked up once per kind of
   key (a text field, or a prefix length of one) in a table of ``(kind, key, n)`` built from the
   evaluator's index atoms, so that row meets only the profiles ``n`` that can fire on it;
3. ``raw_items`` / ``per_item``: per candidate, the profile's degree, exception and the control
   forms it applies (a binary tree of CASEs on ``n`` picks the profile's expressions); the
   candidates that fired go on;
4. ``per_pair``: per declaration and profile that fired, the control forms applied on any item;
5. per breakdown group: each profile's counts joined with the declaration's control results
   pivoted by procedure, and the counts that do not depend on a profile, as long rows.

:meth:`PushdownQuery.fetch` lays the long rows side by side per group. Profiles :func:`plan`
cannot compile for the engine run in :mod:`riskengine.backtest.fallback` over the same rows;
:func:`declaration_query` gives one row per declaration for differential tests and audits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.backtest.candidates import (
    _ALWAYS,
    _ONE,
    _ZERO,
    _by_n,
    _cannot_fire,
    _flag,
    _guards,
    _int,
)
from riskengine.backtest.controls import any_sums, cents, procedure_sums
from riskengine.backtest.planned import PlannedProfile, plan
from riskengine.regional import apply_fill
from riskengine.semantics import sql as ops
from riskengine.semantics.fills import sql_choices
from riskengine.sql.compile import Col, ProfileSql, SqlScope, compile_profile
from riskengine.store.history import HistoryTerms

__all__ = [
    "BREAKDOWNS",
    "HistoryManySql",
    "HistorySql",
    "PlannedProfile",
    "PushdownQuery",
    "any_sums",
    "build_query",
    "cents",
    "declaration_query",
    "plan",
    "procedure_sums",
]

#: Breakdown keys a backtest can group by, and the catalogue field each one reads.
BREAKDOWNS: Mapping[str, str | None] = {
    "month": "declaration.date",
    "office": "declaration.office",
    "regime": "declaration.regime",
}

#: Builds the set-based history of one history block for the declarations of the period: a
#: selectable with ``decl_pk``, ``item_no``, ``negative_history``, ``positive_history``.
HistorySql = Callable[[m.History, dt.date, dt.date], sa.Select[Any]]


class HistoryManySql(Protocol):
    """Builds the history of several blocks **with the same subjects** in one selectable (one
    sort of one timeline): ``decl_pk``, ``item_no``, and ``negative_history_k``,
    ``positive_history_k`` for block ``k``; with ``items=False`` (header subjects only) one row
    per declaration (:func:`riskengine.store.history.history_select_many`)."""

    def __call__(
        self, blocks: Sequence[m.History], start: dt.date, end: dt.date, items: bool = True
    ) -> sa.Select[Any]: ...


def _subjects(block: m.History) -> tuple[tuple[str, int | None], ...]:
    return tuple((s.field.path, s.prefix) for s in block.subjects)


def join_histories(
    rows: sa.Subquery,
    blocks: Sequence[m.History],
    date_from: dt.date,
    date_to: dt.date,
    history_sql: HistorySql | None,
    history_many: HistoryManySql | None = None,
) -> tuple[sa.FromClause, dict[m.History, tuple[Col, Col]]]:
    """``rows`` joined per goods item with the history of each distinct block: one subquery per
    subject definition when ``history_many`` is given (blocks that share their subjects share
    one timeline), else one per block. Returns the joined source and, per block, its
    ``negative_history`` and ``positive_history`` columns."""
    histories: dict[m.History, tuple[Col, Col]] = {}
    row_source: sa.FromClause = rows
    if history_sql is None:
        return row_source, histories
    groups: dict[tuple[tuple[str, int | None], ...], list[m.History]] = {}
    for block in blocks:
        group = groups.setdefault(_subjects(block), [])
        if block not in group:
            group.append(block)
    joined = 0

    def join(select: sa.Select[Any], per_item: bool = True) -> sa.Subquery:
        nonlocal row_source, joined
        # OFFSET 0: computed once, then joined (not inlined into every row's evaluation);
        # equalities only, so the engine can hash or index the join.
        h = select.offset(0).subquery(f"history{joined}")
        joined += 1
        on = h.c.decl_pk == rows.c.decl_pk
        if per_item:
            no_item: Col = sa.literal_column("-1")
            same_item = sa.func.coalesce(h.c.item_no, no_item) == sa.func.coalesce(
                rows.c.item_no, no_item
            )
            on = sa.and_(on, same_item)
        row_source = row_source.outerjoin(h, on)
        return h

    for subjects, group in groups.items():
        if history_many is not None:
            # header subjects: one row per declaration, joined on the declaration alone; only
            # the values read, DOUBLE already (the evaluator's float of the exact value, see
            # riskengine.semantics.history.weight_sql)
            per_item = any(path.startswith("item.") for path, _ in subjects)
            inner = history_many(group, date_from, date_to, items=per_item).subquery()
            cols: list[Col] = [inner.c.decl_pk]
            if per_item:
                cols.append(inner.c.item_no)
            # blocks with the same terms share a column (e.g. every block counting clean
            # controls over 365 days, 2 each, at most 10)
            negative: dict[Any, str] = {}
            positive: dict[Any, str] = {}
            names: list[tuple[str, str]] = []
            for k, block in enumerate(group):
                terms = HistoryTerms.of(block)
                neg_key = (terms.window_days, tuple(terms.units.items()), terms.negative)
                pos_key = (terms.window_days, terms.positive)
                if neg_key not in negative:
                    negative[neg_key] = f"n{k}"
                    cols.append(inner.c[f"negative_history_{k}"].label(f"n{k}"))
                if pos_key not in positive:
                    positive[pos_key] = f"p{k}"
                    cols.append(inner.c[f"positive_history_{k}"].label(f"p{k}"))
                names.append((negative[neg_key], positive[pos_key]))
            h = join(sa.select(*cols), per_item)
            for block, (neg, pos) in zip(group, names, strict=True):
                histories[block] = (h.c[neg], h.c[pos])
        else:
            for block in group:
                h = join(history_sql(block, date_from, date_to))
                histories[block] = (h.c.negative_history, h.c.positive_history)
    return row_source, histories


@attrs.frozen
class PushdownQuery:
    """The compiled one-pass query and how to read its result rows."""

    select: sa.CompoundSelect[Any]  # long rows: per group, the totals (n NULL) and each profile n
    profiles: tuple[PlannedProfile, ...]
    group_by: tuple[str, ...]
    procedures: tuple[str, ...]
    controls: tuple[tuple[str, ...], ...]  # procedure codes each pushed profile can apply
    #: one row per declaration and profile ``n`` that fired on one of its items (none for the
    #: others): ``decl_pk``, ``decl_id``, ``g_<key>``, ``n``, ``fires`` (1), ``c<j>`` (0/1) per
    #: procedure of ``code_names``, ``best`` if asked
    per_pair: sa.CTE
    code_names: Mapping[str, str]  # procedure code -> its column in ``per_pair``
    period: sa.Subquery  # every declaration of the period: ``decl_pk``, ``decl_id``
    #: per pair of ``per_pair``: the control results counted for the profile (``controls``,
    #: ``hits``, ``revenue`` in cents) and every control result (``any_controls``, …)
    pair_counts: tuple[Col, ...] = ()
    #: the declarations of the period with their date and office (``decl_pk``, ``date``,
    #: ``office``), and the control results pivoted per declaration
    header: sa.Subquery | None = None
    controls_done: sa.CTE | None = None

    def fetch(self, connection: sa.Connection) -> list[dict[str, Any]]:
        """Run ``select`` and give one row per breakdown group, ordered by the group keys: the
        keys, ``considered``, ``violations``, ``controls_all``, ``random_controls``,
        ``random_hits``, and per pushed-down profile ``n``: ``p{n}_selected``,
        ``p{n}_c{code}`` per procedure code it can apply, ``p{n}_controls``, ``p{n}_hits``,
        ``p{n}_revenue`` (cents), and the same counts for every control result on its selections
        whatever the procedure: ``p{n}_controls_any``, ``p{n}_hits_any``, ``p{n}_revenue_any``."""
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}

        def group(key: tuple[Any, ...]) -> dict[str, Any]:
            row = groups.get(key)
            if row is None:
                row = dict(zip(self.group_by, key, strict=True))
                row.update({t: 0 for t in _TOTALS})
                for n, codes in enumerate(self.controls):
                    row[f"p{n}_selected"] = 0
                    row.update({f"p{n}_c{code}": 0 for code in codes})
                    row.update({f"p{n}_controls": 0, f"p{n}_hits": 0, f"p{n}_revenue": 0})
                    row.update({f"p{n}_{t}": 0 for t in _ANY})
                groups[key] = row
            return row

        with ops.sql_recursion():
            # a one-off statement: no cache key (computing it walks the whole tree, ~0.6 s for
            # 100 profiles) and no place in the engine's statement cache
            result = connection.execution_options(compiled_cache=None).execute(self.select)
        for r in result:
            m = r._mapping
            row = group(tuple(m[f"g_{k}"] for k in self.group_by))
            n = m["n"]
            if n is None:  # the profile-independent counts of the group
                for t in _TOTALS:
                    row[t] += int(m[t] or 0)
                continue
            row[f"p{n}_selected"] += int(m["selected"] or 0)
            for code in self.controls[n]:
                row[f"p{n}_c{code}"] += int(m[self.code_names[code]] or 0)
            row[f"p{n}_controls"] += int(m["controls"] or 0)
            row[f"p{n}_hits"] += int(m["hits"] or 0)
            row[f"p{n}_revenue"] += int(m["revenue"] or 0)
            for t in _ANY:
                row[f"p{n}_{t}"] += int(m[t] or 0)
        order = sorted(groups, key=lambda k: tuple((v is not None, v) for v in k))
        return [groups[k] for k in order]

    def fired(self, n: int) -> sa.Select[Any]:
        """Ids of the declarations profile ``n`` selected."""
        pp = self.per_pair
        return sa.select(pp.c.decl_id).where(pp.c.n == _int(n), pp.c.fires == _ONE)

    def _both(self, a: int, b: int) -> sa.Subquery:
        pp = self.per_pair

        def fires(n: int) -> Col:
            return sa.func.max(sa.case((pp.c.n == _int(n), pp.c.fires), else_=_ZERO))

        return (
            sa.select(pp.c.decl_id, fires(a).label("fa"), fires(b).label("fb"))
            .where(pp.c.n.in_([_int(a), _int(b)]))
            .group_by(pp.c.decl_id)
            .subquery("both_profiles")
        )

    def compare(self, a: int, b: int) -> sa.Select[Any]:
        """How many declarations ``a`` newly selects (``new``) and no longer selects (``gone``)
        against ``b``."""
        both = self._both(a, b)
        return sa.select(
            sa.func.coalesce(sa.func.sum(_flag(sa.and_(both.c.fa == 1, both.c.fb == 0))), 0)
            .label("new"),
            sa.func.coalesce(sa.func.sum(_flag(sa.and_(both.c.fa == 0, both.c.fb == 1))), 0)
            .label("gone"),
        )  # fmt: skip

    def examples(self, a: int, b: int, new: bool, limit: int = 5) -> sa.Select[Any]:
        """Ids of declarations newly selected by ``a`` (``new``) or no longer selected."""
        both = self._both(a, b)
        cond = (
            sa.and_(both.c.fa == 1, both.c.fb == 0)
            if new
            else sa.and_(both.c.fa == 0, both.c.fb == 1)
        )
        return sa.select(both.c.decl_id).where(cond).order_by(both.c.decl_id).limit(limit)

    def selected(self, ns: Sequence[int] | None = None) -> sa.Select[Any]:
        """One row per declaration and profile ``n`` (of ``ns``, every profile when ``None``)
        that selected it, ordered by ``n`` and declaration id: ``n``, ``decl_id``, ``date``,
        ``office``, ``best`` (NULL unless built with ``fired_degree``), a 0/1 column per
        procedure of ``code_names``, and :attr:`pair_counts`."""
        pp = self.per_pair
        best: Col = pp.c.best if "best" in pp.c else sa.null()
        source: sa.FromClause = pp
        if self.controls_done is not None:
            done = self.controls_done
            source = source.outerjoin(done, done.c.decl_pk == pp.c.decl_pk)
        assert self.header is not None
        source = source.join(self.header, self.header.c.decl_pk == pp.c.decl_pk)
        query = (
            sa.select(
                pp.c.n, pp.c.decl_id, self.header.c.date, self.header.c.office,
                best.label("best"), *[pp.c[c] for c in self.code_names.values()],
                *self.pair_counts,
            )
            .select_from(source)
            .order_by(pp.c.n, ops.code_point(pp.c.decl_id))  # as Python sorts the fallback's
        )  # fmt: skip
        if ns is not None:
            query = query.where(pp.c.n.in_([_int(n) for n in ns]))
        return query

    def changes(self, a: int, b: int) -> sa.Select[Any]:
        """:meth:`selected` rows of profile ``a`` on declarations ``b`` did not select (an
        anti-join), ordered by declaration id."""
        other = self.per_pair.alias("other_pair")
        pp = self.per_pair
        not_b = ~sa.exists().where(other.c.n == _int(b), other.c.decl_pk == pp.c.decl_pk)
        return self.selected([a]).where(not_b)

    def per_declaration(self) -> sa.Select[Any]:
        """One row per declaration of the period, ordered by id: ``decl_id``, and per profile
        ``n``: ``p{n}_fires`` (0/1), ``p{n}_best`` (when built with ``fired_degree``) and
        ``p{n}_c{code}`` (0/1) per procedure code in ``controls[n]``."""
        pp = self.per_pair

        def at(n: int, col: Col, zero: Col | None = _ZERO) -> Col:
            return sa.func.max(sa.case((pp.c.n == _int(n), col), else_=zero))

        cols: list[Col] = [pp.c.decl_pk]
        for n, codes in enumerate(self.controls):
            cols.append(at(n, pp.c.fires).label(f"p{n}_fires"))
            if "best" in pp.c:
                cols.append(at(n, pp.c.best, None).label(f"p{n}_best"))
            cols += [at(n, pp.c[self.code_names[c]]).label(f"p{n}_c{c}") for c in codes]
        wide = sa.select(*cols).group_by(pp.c.decl_pk).subquery("wide")
        out: list[Col] = [self.period.c.decl_id]
        for c in wide.c:
            if c.key == "decl_pk":
                continue
            out.append(
                c.label(c.key) if c.key.endswith("_best") else sa.func.coalesce(c, 0).label(c.key)
            )
        joined = self.period.outerjoin(wide, wide.c.decl_pk == self.period.c.decl_pk)
        return sa.select(*out).select_from(joined).order_by(self.period.c.decl_id)


def _labels(source: Any) -> dict[str, str]:
    """A unique label per catalogue field: header fields ``h_<col>``, item fields ``i_<col>``
    (``declaration.number`` and ``item.number`` share a column name in their own tables)."""
    out: dict[str, str] = {}
    for path, col in source.field_columns.items():
        out[path] = ("h_" if path.startswith("declaration.") else "i_") + col
    return out


def item_rows(
    source: Any, date_from: dt.date, date_to: dt.date, fields: Sequence[str]
) -> tuple[sa.Subquery, dict[str, str]]:
    """One row per goods item of each declaration dated in [date_from, date_to]."""
    d = source.declarations
    i = source.items
    labels = _labels(source)
    cols: list[Col] = [
        d.c.pk.label("decl_pk"),
        d.c.id.label("decl_id"),
        i.c.item_no.label("item_no"),
    ]
    for path in sorted(set(fields) | {"declaration.date"}):
        if path in labels:
            cols.append(source.field(path).label(labels[path]))
    date = source.field("declaration.date")
    query = (
        sa.select(*cols)
        .select_from(d.outerjoin(i, i.c.decl_pk == d.c.pk))
        .where(date >= date_from, date <= date_to)
    )
    return query.subquery("rows"), labels


def fields_read(profile: m.Profile) -> set[str]:
    """Every declaration field a profile reads (conditions, degree, controls, history)."""
    out: set[str] = set()
    exprs: list[Any] = [ind.condition for ind in profile.indicators]
    exprs += [ind.unless for ind in profile.indicators if ind.unless is not None]
    exprs += [e.condition for e in profile.exceptions]
    exprs += [c.condition for c in profile.controls if c.condition is not None]
    if profile.degree is not None:
        exprs.append(profile.degree)
    for expr in exprs:
        for node in m.walk(expr):
            if isinstance(node, m.FieldRef) and node.scope in ("declaration", "item"):
                out.add(node.path)
    if profile.history is not None:
        out.update(s.field.path for s in profile.history.subjects)
    if profile.is_regional:  # the fill is chosen by office and date
        out.update(("declaration.office", "declaration.date"))
    return out


def period_rows(
    source: Any,
    profiles: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    group_by: Sequence[str],
    history_sql: HistorySql | None,
    history_many: HistoryManySql | None,
    also: Sequence[str] = (),
) -> tuple[sa.Subquery, dict[str, str], sa.FromClause, dict[m.History, tuple[Col, Col]]]:
    """The period's :func:`item_rows` with every field the profiles and the breakdowns read
    (and ``also``), joined with the profiles' history (:func:`join_histories`): the rows, the
    labels of their fields, the joined source and each history block's columns."""
    fields: set[str] = {f for key in group_by if (f := BREAKDOWNS[key])} | set(also)
    for pp in profiles:
        fields |= fields_read(pp.profile)
    rows, labels = item_rows(source, date_from, date_to, sorted(fields))
    row_source, histories = join_histories(
        rows,
        [pp.profile.history for pp in profiles if pp.profile.history is not None],
        date_from,
        date_to,
        history_sql,
        history_many,
    )
    return rows, labels, row_source, histories


@attrs.frozen
class _Variant:
    """One way a profile applies to a row: the profile itself, or one office's fill of it."""

    guard: Col  # true where this variant applies (always true for a central profile)
    compiled: ProfileSql


def _variants(
    pp: PlannedProfile,
    field: Callable[[str], Col],
    dialect: str,
    history: tuple[Col, Col] | None,
) -> list[_Variant]:
    neg, pos = history if history is not None else (None, None)
    scope = SqlScope(
        field=field, dialect=dialect, lists=pp.lists, negative_history=neg, positive_history=pos,
        types=pp.types,
    )  # fmt: skip
    if not pp.profile.is_regional:
        return [_Variant(sa.true(), compile_profile(pp.profile, scope))]
    # the rule of riskengine.semantics.fills: each row takes the variant of the fill that
    # applies to its office and date (at most one), none when no fill does
    choices = sql_choices(pp.fills, field("declaration.office"), field("declaration.date"))
    return [
        _Variant(guard, compile_profile(apply_fill(pp.profile, pp.fills[k]), scope))
        for k, guard in choices
    ]


def build_query(
    source: Any,
    planned: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    dialect: str,
    group_by: Sequence[str] = (),
    history_sql: HistorySql | None = None,
    fired_degree: bool = False,
    history_many: HistoryManySql | None = None,
) -> PushdownQuery:
    """The one-pass metrics query for every profile in ``planned`` that can run in SQL.

    ``fired_degree`` adds ``best`` to the per-declaration layer: the highest degree among the
    items that fired (NULL when none did), as the evaluator reports it. ``history_many``
    (optional) computes the blocks that share their subjects in one subquery."""
    for key in group_by:
        if key not in BREAKDOWNS:
            raise ValueError(f"unknown breakdown {key!r}; use one of {', '.join(BREAKDOWNS)}")
    pushed = tuple(pp for pp in planned if pp.pushdown)
    # the rows, with the history: one set-based subquery per subject definition (or per
    # distinct block), joined per item
    rows, labels, row_source, histories = period_rows(
        source, pushed, date_from, date_to, group_by, history_sql, history_many
    )

    def row_field(path: str) -> Col:
        label = labels.get(path)
        if label is None or label not in rows.c:
            return sa.null()
        return rows.c[label]

    def group_cols(col_of: Callable[[str], Col]) -> list[Col]:
        out: list[Col] = []
        for key in group_by:
            col = col_of(str(BREAKDOWNS[key]))
            out.append((ops.month(col) if key == "month" else col).label(f"g_{key}"))
        return out

    # ---- layer 1: the candidate join, (row, profile n) for the profiles that can fire there:
    # each row once per kind of key, with its key of that kind, joined on (kind, key) with the
    # guards; behind an OFFSET 0 fence so that every engine looks the guards up per row (SQLite
    # would otherwise join the guards by kind alone before the items)
    guards = _guards(pushed, lambda path: path in labels and labels[path] in rows.c)
    kind_numbers = list(range(len(guards.kinds))) + ([_ALWAYS] if guards.always else [])
    if not kind_numbers:  # nothing can fire anywhere: one kind that matches no guard
        kind_numbers = [_ALWAYS]
    kinds = sa.union_all(*[sa.select(_int(k).label("kind")) for k in kind_numbers]).subquery(
        "kinds"
    )
    keys: dict[Col, Col] = {}
    for k, (path, length) in enumerate(guards.kinds):
        value = row_field(path)
        keys[_int(k)] = value if length is None else sa.func.substr(value, 1, length)
    empty: Col = sa.literal_column("''", sa.String())
    row_key = sa.case(keys, value=kinds.c.kind, else_=empty) if keys else empty
    history_names: dict[Any, str] = {}
    for pair in histories.values():
        for col in pair:
            history_names.setdefault(col, f"hist{len(history_names)}")
    keyed = (
        sa.select(
            *rows.c,
            *[col.label(name) for col, name in history_names.items()],
            kinds.c.kind,
            row_key.label("row_key"),
        )
        .select_from(row_source.outerjoin(kinds, sa.true()))
        .offset(0)
        .cte("keyed")
    )
    table = sa.values(
        sa.column("kind", sa.Integer()),
        sa.column("key", sa.String()),
        sa.column("n", sa.Integer()),
        name="guards",
    ).data(list(guards.rows) or [(-2, "", -1)])
    g = table.cte("guards")
    # SQLite: a LEFT JOIN, its unmatched rows dropped a layer up, fixes the join order (rows
    # outside, the guards looked up by an index on (kind, key)); an inner join let it index the
    # rows instead, copying every column of every row into a temporary index
    outer = dialect == "sqlite"
    candidates = keyed.join(
        g, sa.and_(g.c.kind == keyed.c.kind, g.c.key == keyed.c.row_key), isouter=outer
    )
    n_col = g.c.n
    histories = {
        block: (keyed.c[history_names[neg]], keyed.c[history_names[pos]])
        for block, (neg, pos) in histories.items()
    }

    def field(path: str) -> Col:
        label = labels.get(path)
        if label is None or label not in keyed.c:
            return sa.null()
        return keyed.c[label]

    # ---- layer 2a: per (row, profile), everything that reads the row, each computed once:
    # the raw degree (NULL when excepted or no fill applies) and each control's condition
    raws: list[tuple[int, Col]] = []
    slots: list[list[tuple[int, Col]]] = []  # slot s: [(n, flag)]
    # (profile n) -> [(code, threshold, slot or None)]
    tests: list[list[tuple[str, float, int | None]]] = []
    no_degree: Col = sa.cast(sa.null(), sa.Double())
    for n, pp in enumerate(pushed):
        block = pp.profile.history
        variants = _variants(pp, field, dialect, histories.get(block) if block else None)
        whens = [
            (sa.and_(v.guard, sa.not_(v.compiled.excluded)), v.compiled.raw_degree)
            for v in variants
        ]
        if n in guards.always:
            # no atoms, but maybe a cheaper guard: rows where it is false skip the degree
            skip = _cannot_fire(pp, guards.plans[n], field, dialect)
            if skip is not None:
                whens.insert(0, (skip, no_degree))
        raws.append((n, sa.case(*whens, else_=no_degree) if whens else no_degree))
        mine: list[tuple[str, float, int | None]] = []
        slot = 0
        for v in variants:
            for control, condition in v.compiled.conditions:
                if condition is None and not pp.profile.is_regional:
                    # no condition, no fill guard: the threshold alone decides
                    mine.append((control.code, float(control.threshold), None))
                    continue
                guard = v.guard if condition is None else sa.and_(v.guard, condition)
                if slot == len(slots):
                    slots.append([])
                slots[slot].append((n, _flag(guard)))
                mine.append((control.code, float(control.threshold), slot))
                slot += 1
        tests.append(mine)
    pair_cols: list[Col] = [keyed.c.decl_pk, keyed.c.decl_id, *group_cols(field), n_col.label("n")]
    pair_cols.append(_by_n(n_col, raws, no_degree).label("raw"))
    pair_cols += [_by_n(n_col, s, _ZERO).label(f"f{k}") for k, s in enumerate(slots)]
    # OFFSET 0: computed once per pair, not inlined into every threshold test of layer 2b
    raw_items = sa.select(*pair_cols).select_from(candidates).offset(0).cte("raw_items")

    # ---- layer 2b: thresholds tested on the raw degree (the clamp only where it is shown)
    raw_col = raw_items.c.raw
    procedures = sorted({code for mine in tests for code, _, _ in mine})
    by_code: dict[str, list[tuple[int, Col]]] = {code: [] for code in procedures}
    item_fires: list[tuple[int, Col]] = []
    per_profile_controls: list[list[str]] = []
    for n, mine in enumerate(tests):
        applies: dict[str, list[Col]] = {}
        for code, threshold, slot_no in mine:
            reached = ops.reaches(raw_col, threshold)
            applies.setdefault(code, []).append(
                reached if slot_no is None else sa.and_(raw_items.c[f"f{slot_no}"] == _ONE, reached)
            )
        for code, parts in applies.items():
            by_code[code].append((n, _flag(sa.or_(*parts))))
        if applies:
            item_fires.append((n, sa.or_(*[p for parts in applies.values() for p in parts])))
        per_profile_controls.append(sorted(applies))
    per_item_cols: list[Col] = [raw_items.c.decl_pk, raw_items.c.decl_id]
    per_item_cols += [raw_items.c[f"g_{key}"] for key in group_by]
    per_item_cols.append(raw_items.c.n)
    code_names = {code: f"c{j}" for j, code in enumerate(procedures)}
    for code in procedures:
        per_item_cols.append(_by_n(raw_items.c.n, by_code[code], _ZERO).label(code_names[code]))
    if fired_degree:
        degree = sa.case((raw_col.is_(None), no_degree), else_=ops.clamp(raw_col))
        fired = [(n, sa.case((f, degree), else_=no_degree)) for n, f in item_fires]
        per_item_cols.append(_by_n(raw_items.c.n, fired, no_degree).label("best"))
    per_item_select = sa.select(*per_item_cols)
    if outer:
        per_item_select = per_item_select.where(raw_items.c.n.is_not(None))
    # OFFSET 0: the filter below reads the flags, it does not compute them a second time
    per_item = per_item_select.offset(0).cte("per_item")

    # ---- layer 3: per (declaration, profile) that fired on one of its items: each control
    # applied on some item. Only the pairs that fired go on (a few per cent of the candidates):
    # a declaration without one was not selected, and adds nothing to a profile's counts.
    decl_keys = [per_item.c.decl_pk, per_item.c.decl_id]
    decl_keys += [per_item.c[f"g_{key}"] for key in group_by]
    decl_keys.append(per_item.c.n)
    flags = [per_item.c[code_names[c]] for c in procedures]
    fired_item = _sum(flags, _ZERO) > _ZERO if flags else sa.false()
    pair_decl_cols = [*decl_keys, _ONE.label("fires")]
    pair_decl_cols += [sa.func.max(f).label(f.key) for f in flags]
    if fired_degree:
        pair_decl_cols.append(sa.func.max(per_item.c.best).label("best"))
    per_pair = sa.select(*pair_decl_cols).where(fired_item).group_by(*decl_keys).cte("per_pair")

    # ---- the declaration's control results pivoted by procedure
    cr = source.control_results
    pivot: sa.CTE | None = None
    if cr is not None:
        violation = _flag(cr.c.violation_found == sa.true())
        cr_cols: list[Col] = [cr.c.decl_pk, *procedure_sums(cr, procedures), *any_sums(cr)]
        cr_cols += [
            sa.func.sum(_flag(cr.c.random_control == sa.true())).label("n_random"),
            sa.func.sum(sa.case((cr.c.random_control == sa.true(), violation), else_=0)).label(
                "h_random"
            ),
        ]
        pivot = sa.select(*cr_cols).group_by(cr.c.decl_pk).cte("controls_done")

    def done(name: str) -> Col:
        return _ZERO if pivot is None else sa.func.coalesce(pivot.c[name], 0)

    # ---- layer 4a: per breakdown group and profile, the counts of its selections
    pp_group = [per_pair.c[f"g_{key}"] for key in group_by]
    carried: list[Col] = []
    hits: list[Col] = []
    revenue: list[Col] = []
    for j, code in enumerate(procedures):
        applied = per_pair.c[code_names[code]] == _ONE
        carried.append(sa.case((applied, done(f"n{j}")), else_=0))
        hits.append(sa.case((applied, done(f"h{j}")), else_=0))
        revenue.append(sa.case((applied, done(f"r{j}")), else_=0))
    pair_counts: tuple[Col, ...] = (
        _sum(carried, _ZERO).label("controls"),
        _sum(hits, _ZERO).label("hits"),
        _sum(revenue, _ZERO).label("revenue"),
        done("n_all").label("any_controls"),
        done("h_all").label("any_hits"),
        done("r_all").label("any_revenue"),
    )
    nothing: Col = sa.null()
    profile_part = (
        sa.select(
            *pp_group,
            per_pair.c.n,
            *[nothing.label(t) for t in _TOTALS],
            sa.func.sum(per_pair.c.fires).label("selected"),
            *[sa.func.sum(per_pair.c[code_names[c]]).label(code_names[c]) for c in procedures],
            sa.func.sum(_sum(carried, _ZERO)).label("controls"),
            sa.func.sum(_sum(hits, _ZERO)).label("hits"),
            sa.func.sum(_sum(revenue, _ZERO)).label("revenue"),
            sa.func.sum(done("n_all")).label("controls_any"),
            sa.func.sum(done("h_all")).label("hits_any"),
            sa.func.sum(done("r_all")).label("revenue_any"),
        )
        .select_from(
            per_pair
            if pivot is None
            else per_pair.outerjoin(pivot, pivot.c.decl_pk == per_pair.c.decl_pk)
        )
        .group_by(*pp_group, per_pair.c.n)
    )

    # ---- layer 4b: per breakdown group, what does not depend on a profile (every declaration
    # of the period, violations, random controls)
    decls = source.declarations
    date = source.field("declaration.date")
    in_period = sa.and_(date >= date_from, date <= date_to)
    totals_group = group_cols(source.field)
    totals_from: sa.FromClause = (
        decls if pivot is None else decls.outerjoin(pivot, pivot.c.decl_pk == decls.c.pk)
    )
    totals_part = (
        sa.select(
            *totals_group,
            sa.cast(nothing, sa.Integer()).label("n"),
            sa.func.count().label("considered"),
            sa.func.sum(done("h_all")).label("violations"),
            sa.func.sum(done("n_all")).label("controls_all"),
            sa.func.sum(done("n_random")).label("random_controls"),
            sa.func.sum(done("h_random")).label("random_hits"),
            *[nothing.label(t) for t in ("selected", *code_names.values())],
            *[nothing.label(t) for t in ("controls", "hits", "revenue", *_ANY)],
        )
        .select_from(totals_from)
        .where(in_period)
    )
    if group_by:
        totals_part = totals_part.group_by(*totals_group)
    # (the layers are CTEs, not nested subqueries: SQLite's parser has a fixed stack for nested
    # parentheses, which deep profile expressions inside five levels of subqueries overflowed)
    # layer 5, the profiles' counts side by side per group, is done in Python over these few
    # rows (:meth:`PushdownQuery.fetch`): as SQL, its hundreds of aggregates cost SQLite more
    # to prepare than the rows cost to add up
    select = sa.union_all(totals_part, profile_part)
    period = sa.select(decls.c.pk.label("decl_pk"), decls.c.id.label("decl_id")).where(in_period)
    office: Col = (
        source.field("declaration.office")
        if "declaration.office" in source.field_columns
        else sa.null()
    )
    header = sa.select(
        decls.c.pk.label("decl_pk"), date.label("date"), office.label("office")
    ).subquery("header")
    return PushdownQuery(
        select,
        pushed,
        tuple(group_by),
        tuple(procedures),
        tuple(tuple(codes) for codes in per_profile_controls),
        per_pair,
        code_names,
        period.subquery("period"),
        pair_counts,
        header,
        pivot,
    )


#: The per-group counts that do not depend on a profile.
_TOTALS = ("considered", "violations", "controls_all", "random_controls", "random_hits")
#: A profile's counts of every control result on its selections, whatever the procedure.
_ANY = ("controls_any", "hits_any", "revenue_any")


def _sum(parts: Sequence[Col], zero: Col) -> Col:
    if not parts:
        return zero
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def declaration_query(
    source: Any,
    planned: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    dialect: str,
    history_sql: HistorySql | None = None,
    history_many: HistoryManySql | None = None,
) -> tuple[sa.Select[Any], tuple[tuple[str, ...], ...]]:
    """One row per declaration of the period, from the pushdown layers: ``decl_id``, and per
    pushed-down profile ``n``: ``p{n}_fires`` (0/1), ``p{n}_best`` (the highest degree among
    fired items, NULL when it did not fire) and ``p{n}_c{code}`` (0/1) for each procedure code
    it can apply (the codes, per profile, are returned with the query). For tests and audits."""
    query = build_query(
        source,
        planned,
        date_from,
        date_to,
        dialect,
        history_sql=history_sql,
        fired_degree=True,
        history_many=history_many,
    )
    return query.per_declaration(), query.controls
