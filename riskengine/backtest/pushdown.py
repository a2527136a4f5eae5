"""Backtests pushed down to SQL: many profiles in one pass, metrics aggregated in the engine.

The query has four layers, all SQLAlchemy Core over a :class:`~riskengine.store.source.StoreSource`
(the store's own tables or a user's, with canonical column names):

1. ``rows``: one row per goods item of every declaration in the period (declarations without
   items give one row whose item fields are NULL), with the history columns of each profile;
2. ``per_item``: each profile's degree, exception, firing and control flags for the row;
3. ``per_declaration``: grouped by declaration — the highest degree over items that are not
   excepted, fired if any item fired, a control if it applied on any item — joined with the
   declaration's control results pivoted by procedure code;
4. ``metrics``: grouped by the requested breakdown (month, office, regime), counts and sums.

Only the last layer's few rows travel to Python. Profiles :func:`plan` cannot compile for the
engine run in :mod:`riskengine.backtest.fallback` over the same rows; :func:`declaration_query`
exposes layer 3 (one row per declaration) for differential tests and audits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.regional import apply_fill
from riskengine.sql.compile import (
    Col,
    ExprCompiler,
    ProfileSql,
    SqlScope,
    SqlUnsupported,
    _nn,
    clamp,
    compile_profile,
)
from riskengine.store.history import HistoryTerms

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
            # the values read, as DOUBLE (the evaluator's float of the exact value)
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
                neg_key = (terms.window_days, tuple(sorted(terms.units.items())), terms.scale,
                           terms.per_case, terms.negative_max)  # fmt: skip
                pos_key = (terms.window_days, terms.step, terms.positive_max)
                if neg_key not in negative:
                    negative[neg_key] = f"n{k}"
                    cols.append(
                        sa.cast(inner.c[f"negative_history_{k}"], sa.Double()).label(f"n{k}")
                    )
                if pos_key not in positive:
                    positive[pos_key] = f"p{k}"
                    cols.append(
                        sa.cast(inner.c[f"positive_history_{k}"], sa.Double()).label(f"p{k}")
                    )
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
class PlannedProfile:
    """A profile as the backtest runs it: its key, the model, and where it is evaluated."""

    key: str
    profile: m.Profile
    fills: tuple[m.Fill, ...] = ()
    lists: Mapping[str, m.ListLit] = attrs.field(factory=dict)  # file-level named lists
    pushdown: bool = True
    reason: str | None = None  # why it cannot run in SQL


@attrs.frozen
class PushdownQuery:
    """The compiled one-pass query and how to read its result rows."""

    select: sa.Select[Any]
    profiles: tuple[PlannedProfile, ...]
    group_by: tuple[str, ...]
    procedures: tuple[str, ...]
    controls: tuple[tuple[str, ...], ...]  # procedure codes each pushed profile can apply
    per_decl: sa.Subquery  # one row per declaration: decl_id, p{n}_fires, p{n}_c{code}, ...
    pairs: tuple[tuple[int, int], ...] = ()  # compared (a, b): x{k}_new / x{k}_gone columns

    def examples(self, pair: int, new: bool, limit: int = 5) -> sa.Select[Any]:
        """Ids of declarations newly selected by ``a`` (``new``) or no longer selected."""
        a, b = self.pairs[pair]
        fa, fb = self.per_decl.c[f"p{a}_fires"], self.per_decl.c[f"p{b}_fires"]
        cond = sa.and_(fa == 1, fb == 0) if new else sa.and_(fa == 0, fb == 1)
        return (
            sa.select(self.per_decl.c.decl_id)
            .where(cond)
            .order_by(self.per_decl.c.decl_id)
            .limit(limit)
        )


def _month(col: Col, dialect: str) -> Col:
    if dialect == "postgresql":
        return sa.func.to_char(col, "YYYY-MM")
    if dialect == "duckdb":
        return sa.func.strftime(col, "%Y-%m")
    return sa.func.strftime("%Y-%m", col)


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


def plan(profiles: Sequence[PlannedProfile], dialect: str) -> list[PlannedProfile]:
    """Decide per profile whether it runs in SQL, by compiling it against a dummy row source."""
    planned = []
    for pp in profiles:
        dummy = SqlScope(field=lambda path: sa.column(path), dialect=dialect, lists=pp.lists)
        try:
            variants = (
                [apply_fill(pp.profile, f) for f in pp.fills]
                if pp.profile.is_regional
                else [pp.profile]
            )
            for variant in variants:
                compile_profile(variant, dummy)
            planned.append(attrs.evolve(pp, pushdown=True, reason=None))
        except SqlUnsupported as exc:
            planned.append(attrs.evolve(pp, pushdown=False, reason=exc.reason))
        except KeyError as exc:  # a fill without a value for a parameter: missing in Python
            reason = f"a fill gives no value for a parameter ({exc.args[0] if exc.args else exc})"
            planned.append(attrs.evolve(pp, pushdown=False, reason=reason))
    return planned


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
        field=field, dialect=dialect, lists=pp.lists, negative_history=neg, positive_history=pos
    )
    if not pp.profile.is_regional:
        return [_Variant(sa.true(), compile_profile(pp.profile, scope))]
    office = field("declaration.office")
    date = field("declaration.date")
    out = []
    taken: list[Col] = []
    # the evaluator's choice when several fills of an office are valid: the one starting last
    # (the later one among equal starts); each row takes exactly one variant
    order = sorted(
        (k for k, f in enumerate(pp.fills) if f.valid is not None and f.office is not None),
        key=lambda k: (pp.fills[k].valid.start, k),  # type: ignore[union-attr]
        reverse=True,
    )
    for k in order:
        fill = pp.fills[k]
        assert fill.valid is not None
        valid = sa.and_(
            office == fill.office,
            date >= fill.valid.start,
            date <= (fill.valid.end or dt.date.max),
        )
        guard = sa.and_(valid, *[sa.not_(t) for t in taken]) if taken else valid
        taken.append(_nn(valid))
        out.append(_Variant(_nn(guard), compile_profile(apply_fill(pp.profile, fill), scope)))
    return out


def _cannot_fire(pp: PlannedProfile, field: Callable[[str], Col], dialect: str) -> Col | None:
    """A condition under which the profile cannot fire on the row: none of the guards of the
    evaluator's index plan (:func:`riskengine.evaluator.index.plan_index`, predicates on fields
    at least one of which holds wherever the profile can fire) holds. ``None`` when the profile
    has no guard (or is regional: its fills change what can fire)."""
    if pp.profile.is_regional:
        return None
    from riskengine.evaluator.index import plan_index

    lists = dict(pp.lists)
    lists.update({ld.name: ld.values for ld in pp.profile.lists})
    try:
        guards = plan_index(pp.profile, pp.profile.controls, lists).guards
    except Exception:  # no plan, no shortcut: the full expression decides
        return None
    if not guards:
        return None
    comp = ExprCompiler(pp.profile, SqlScope(field=field, dialect=dialect, lists=pp.lists))
    try:
        held = [comp.boolean(g) for g in guards]
    except SqlUnsupported:
        return None
    return sa.not_(held[0] if len(held) == 1 else sa.or_(*held))


_ONE: Col = sa.literal_column("1")
_ZERO: Col = sa.literal_column("0")


def _flag(pred: Col) -> Col:
    return sa.case((pred, _ONE), else_=_ZERO)


def build_query(
    source: Any,
    planned: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    dialect: str,
    group_by: Sequence[str] = (),
    history_sql: HistorySql | None = None,
    pairs: Sequence[tuple[int, int]] = (),
    fired_degree: bool = False,
    history_many: HistoryManySql | None = None,
) -> PushdownQuery:
    """The one-pass metrics query for every profile in ``planned`` that can run in SQL.

    ``fired_degree`` adds ``p{n}_best`` to the per-declaration layer: the highest degree among
    the items that fired (NULL when none did), as the evaluator reports it. ``history_many``
    (optional) computes the blocks that share their subjects in one subquery."""
    for key in group_by:
        if key not in BREAKDOWNS:
            raise ValueError(f"unknown breakdown {key!r}; use one of {', '.join(BREAKDOWNS)}")
    pushed = tuple(pp for pp in planned if pp.pushdown)
    fields: set[str] = {f for key in group_by if (f := BREAKDOWNS[key])}
    for pp in pushed:
        fields |= fields_read(pp.profile)
    rows, labels = item_rows(source, date_from, date_to, sorted(fields))

    # ---- history: one set-based subquery per subject definition (or per distinct block),
    # joined per item
    row_source, histories = join_histories(
        rows,
        [pp.profile.history for pp in pushed if pp.profile.history is not None],
        date_from,
        date_to,
        history_sql,
        history_many,
    )

    # ---- layer 2a: per item, everything that reads the row, each computed once:
    # the raw degree, the exception, each control's own condition (and fill guard)
    def field(path: str) -> Col:
        label = labels.get(path)
        if label is None or label not in rows.c:
            return sa.null()
        return rows.c[label]

    item_cols: list[Col] = [rows.c.decl_pk, rows.c.decl_id]
    for key in group_by:
        path = BREAKDOWNS[key]
        assert path is not None
        col = rows.c[labels[path]]
        item_cols.append((_month(col, dialect) if key == "month" else col).label(f"g_{key}"))
    # (profile n) -> [(code, threshold, flag column name)]
    tests: list[list[tuple[str, float, str | None]]] = []
    for n, pp in enumerate(pushed):
        block = pp.profile.history
        variants = _variants(pp, field, dialect, histories.get(block) if block else None)
        no_degree: Col = sa.cast(sa.null(), sa.Float())
        # not applicable (no fill) or excepted -> NULL raw degree: the item cannot fire
        whens = [
            (sa.and_(v.guard, sa.not_(v.compiled.excluded)), v.compiled.raw_degree)
            for v in variants
        ]
        # items on which the profile cannot fire (the evaluator's index guards are all false)
        # skip the degree: the CASE stops at its first branch
        skip = _cannot_fire(pp, field, dialect)
        if skip is not None:
            whens.insert(0, (skip, no_degree))
        raw = sa.case(*whens, else_=no_degree) if whens else no_degree  # regional, no fills
        item_cols.append(raw.label(f"p{n}_raw"))
        mine: list[tuple[str, float, str | None]] = []
        for k, v in enumerate(variants):
            for j, (control, condition) in enumerate(v.compiled.conditions):
                if condition is None and not pp.profile.is_regional:
                    # no condition, no fill guard: the threshold alone decides
                    mine.append((control.code, float(control.threshold), None))
                    continue
                name = f"p{n}_v{k}_k{j}"
                guard = v.guard if condition is None else sa.and_(v.guard, condition)
                item_cols.append(_flag(guard).label(name))
                mine.append((control.code, float(control.threshold), name))
        tests.append(mine)
    raw_items = sa.select(*item_cols).select_from(row_source).offset(0).subquery("raw_items")

    # ---- layer 2b: clamp once, test thresholds on the clamped column (the OFFSET 0 above keeps
    # SQLite and PostgreSQL from inlining layer 2a here and repeating every degree expression)
    per_item_cols: list[Col] = [raw_items.c.decl_pk, raw_items.c.decl_id]
    per_item_cols += [raw_items.c[f"g_{key}"] for key in group_by]
    procedures: set[str] = set()
    per_profile_controls: list[list[str]] = []
    for n, mine in enumerate(tests):
        raw_col = raw_items.c[f"p{n}_raw"]
        # NULL (excepted, or no fill) stays NULL: GREATEST/LEAST would skip it and give 0
        degree = sa.case(
            (raw_col.is_(None), sa.cast(sa.null(), sa.Float())), else_=clamp(raw_col, dialect)
        )
        by_code: dict[str, list[Col]] = {}
        for code, threshold, flag_name in mine:
            reached = _reaches(raw_col, threshold)
            by_code.setdefault(code, []).append(
                reached if flag_name is None else sa.and_(raw_items.c[flag_name] == _ONE, reached)
            )
        codes = sorted(by_code)
        for code in codes:
            per_item_cols.append(_flag(sa.or_(*by_code[code])).label(f"p{n}_c{code}"))
            procedures.add(code)
        if fired_degree:
            item_fires = sa.or_(*[c for code in codes for c in by_code[code]]) if codes else None
            best = sa.null() if item_fires is None else sa.case((item_fires, degree))
            per_item_cols.append(best.label(f"p{n}_best"))
        per_profile_controls.append(codes)
    per_item = sa.select(*per_item_cols).subquery("per_item")

    # ---- layer 3: per declaration, with control results pivoted by procedure
    decl_cols: list[Col] = [per_item.c.decl_pk, per_item.c.decl_id]
    decl_group = [per_item.c.decl_pk, per_item.c.decl_id]
    for key in group_by:
        decl_cols.append(per_item.c[f"g_{key}"])
        decl_group.append(per_item.c[f"g_{key}"])
    if dialect in _BIT_OR:
        per_decl = _packed_per_decl(
            per_item, decl_cols, decl_group, per_profile_controls, fired_degree
        )
    else:
        per_decl = _per_decl(
            per_item, decl_cols, decl_group, per_profile_controls, fired_degree, dialect
        )

    procs = tuple(sorted(procedures))
    cr = source.control_results
    cr_cols: list[Col] = []
    if cr is not None:
        violation = _flag(cr.c.violation_found == sa.true())
        assessed = sa.func.coalesce(cr.c.revenue, 0.0)
        cr_cols = [cr.c.decl_pk]
        for j, code in enumerate(procs):
            is_code = cr.c.procedure == code
            cr_cols += [
                sa.func.sum(_flag(is_code)).label(f"n{j}"),
                sa.func.sum(sa.case((is_code, violation), else_=0)).label(f"h{j}"),
                sa.func.sum(sa.case((is_code, assessed), else_=0.0)).label(f"r{j}"),
            ]
        cr_cols += [
            sa.func.sum(violation).label("h_all"),
            sa.func.sum(_flag(cr.c.random_control == sa.true())).label("n_random"),
            sa.func.sum(sa.case((cr.c.random_control == sa.true(), violation), else_=0)).label(
                "h_random"
            ),
            sa.func.count().label("n_all"),
        ]
        pivot = sa.select(*cr_cols).group_by(cr.c.decl_pk).subquery("controls_done")
        joined: sa.FromClause = per_decl.outerjoin(pivot, pivot.c.decl_pk == per_decl.c.decl_pk)
    else:
        pivot = None
        joined = per_decl

    def cr_col(name: str) -> Col:
        if pivot is None:
            return sa.literal(0)
        return sa.func.coalesce(pivot.c[name], 0)

    # ---- layer 4: metrics per breakdown group
    out: list[Col] = [per_decl.c[f"g_{key}"].label(key) for key in group_by]
    out.append(sa.func.count().label("considered"))
    out += [
        sa.func.sum(cr_col("h_all")).label("violations"),
        sa.func.sum(cr_col("n_all")).label("controls_all"),
        sa.func.sum(cr_col("n_random")).label("random_controls"),
        sa.func.sum(cr_col("h_random")).label("random_hits"),
    ]
    for n, _pp in enumerate(pushed):
        fired = per_decl.c[f"p{n}_fires"]
        out.append(sa.func.sum(fired).label(f"p{n}_selected"))
        carried: list[Col] = []
        hits: list[Col] = []
        revenue: list[Col] = []
        for code in per_profile_controls[n]:
            flag = per_decl.c[f"p{n}_c{code}"]
            out.append(sa.func.sum(flag).label(f"p{n}_c{code}"))
            j = procs.index(code)
            selected = flag == 1
            carried.append(sa.case((selected, cr_col(f"n{j}")), else_=0))
            hits.append(sa.case((selected, cr_col(f"h{j}")), else_=0))
            revenue.append(sa.case((selected, cr_col(f"r{j}")), else_=0.0))
        zero = sa.literal(0)
        out.append(sa.func.sum(_sum(carried, zero)).label(f"p{n}_controls"))
        out.append(sa.func.sum(_sum(hits, zero)).label(f"p{n}_hits"))
        out.append(sa.func.sum(_sum(revenue, sa.literal(0.0))).label(f"p{n}_revenue"))
    for k, (a, b) in enumerate(pairs):
        fa, fb = per_decl.c[f"p{a}_fires"], per_decl.c[f"p{b}_fires"]
        out.append(sa.func.sum(_flag(sa.and_(fa == 1, fb == 0))).label(f"x{k}_new"))
        out.append(sa.func.sum(_flag(sa.and_(fa == 0, fb == 1))).label(f"x{k}_gone"))
    select = sa.select(*out).select_from(joined)
    if group_by:
        keys = [per_decl.c[f"g_{key}"] for key in group_by]
        select = select.group_by(*keys).order_by(*keys)
    return PushdownQuery(
        select,
        pushed,
        tuple(group_by),
        procs,
        tuple(tuple(codes) for codes in per_profile_controls),
        per_decl,
        tuple(pairs),
    )


def _reaches(raw: Col, threshold: float) -> Col:
    """The clamped degree (0..100; NULL stays NULL) is at least ``threshold``, tested on the
    raw degree without clamping it: the same for a threshold in (0, 100]."""
    if threshold > 100:
        return sa.false()
    if threshold <= 0:
        return raw.is_not(None)
    return sa.func.coalesce(raw >= threshold, sa.false())


def _greatest(parts: list[Col], dialect: str) -> Col:
    return sa.func.max(*parts) if dialect == "sqlite" else sa.func.greatest(*parts)


def _sum(parts: list[Col], zero: Col) -> Col:
    if not parts:
        return zero
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


#: Engines with a bitwise-or aggregate: per declaration, the control flags of every profile are
#: packed into a few BIGINT masks (62 flags each) and OR-ed, instead of one MAX per flag; the
#: grouped state is a handful of integers per declaration whatever the number of profiles.
_BIT_OR = frozenset({"duckdb", "postgresql"})
_BITS = 62


def _per_decl(
    per_item: sa.Subquery,
    decl_cols: Sequence[Col],
    decl_group: Sequence[Col],
    per_profile_controls: Sequence[Sequence[str]],
    fired_degree: bool,
    dialect: str,
) -> sa.Subquery:
    """Layer 3 with one MAX per profile and control."""
    cols = list(decl_cols)
    for n, codes in enumerate(per_profile_controls):
        flags: list[Col] = [sa.func.max(per_item.c[f"p{n}_c{code}"]) for code in codes]
        # fired on some item = some control applied on some item
        fires = _ZERO if not flags else flags[0] if len(flags) == 1 else _greatest(flags, dialect)
        cols.append(fires.label(f"p{n}_fires"))
        if fired_degree:
            cols.append(sa.func.max(per_item.c[f"p{n}_best"]).label(f"p{n}_best"))
        for code, applied in zip(codes, flags, strict=True):
            cols.append(applied.label(f"p{n}_c{code}"))
    return sa.select(*cols).group_by(*decl_group).subquery("per_decl")


def _packed_per_decl(
    per_item: sa.Subquery,
    decl_cols: Sequence[Col],
    decl_group: Sequence[Col],
    per_profile_controls: Sequence[Sequence[str]],
    fired_degree: bool,
) -> sa.Subquery:
    """Layer 3 with the flags packed into BIGINT masks OR-ed per declaration, then unpacked
    into the same columns as :func:`_per_decl` (``p{n}_fires``, ``p{n}_c{code}``...)."""
    flags = [(n, code) for n, codes in enumerate(per_profile_controls) for code in codes]
    where: dict[tuple[int, str], tuple[int, int]] = {}  # flag -> (mask, bit)
    masks: list[Col] = []
    for g in range(0, len(flags), _BITS):
        terms: list[Col] = []
        for k, (n, code) in enumerate(flags[g : g + _BITS]):
            where[(n, code)] = (g // _BITS, 1 << k)
            terms.append(per_item.c[f"p{n}_c{code}"] * sa.literal_column(str(1 << k)))
        mask = sa.func.bit_or(sa.cast(_sum(terms, _ZERO), sa.BigInteger()))
        masks.append(mask.label(f"m{g // _BITS}"))
    best = (
        [sa.func.max(per_item.c[f"p{n}_best"]).label(f"p{n}_best")
         for n in range(len(per_profile_controls))]
        if fired_degree
        else []
    )  # fmt: skip
    packed = sa.select(*decl_cols, *masks, *best).group_by(*decl_group).subquery("per_decl_masks")
    out: list[Col] = [packed.c[str(c.key)] for c in decl_cols]

    def has(mask: int, bits: int) -> Col:
        return packed.c[f"m{mask}"].op("&")(sa.literal_column(str(bits))) != _ZERO

    for n, codes in enumerate(per_profile_controls):
        by_mask: dict[int, int] = {}
        for code in codes:
            at, bit = where[(n, code)]
            by_mask[at] = by_mask.get(at, 0) | bit
        fired = [has(at, bits) for at, bits in sorted(by_mask.items())]
        fires = _ZERO if not fired else _flag(fired[0] if len(fired) == 1 else sa.or_(*fired))
        out.append(fires.label(f"p{n}_fires"))
        if fired_degree:
            out.append(packed.c[f"p{n}_best"])
        for code in codes:
            out.append(_flag(has(*where[(n, code)])).label(f"p{n}_c{code}"))
    return sa.select(*out).subquery("per_decl")


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
    pd = query.per_decl
    cols = [pd.c.decl_id]
    for n, codes in enumerate(query.controls):
        cols += [pd.c[f"p{n}_fires"], pd.c[f"p{n}_best"]]
        cols += [pd.c[f"p{n}_c{code}"] for code in codes]
    return sa.select(*cols).order_by(pd.c.decl_id), query.controls
