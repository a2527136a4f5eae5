"""Profile diagnostics of a backtest: indicator firing counts and a threshold sweep.

Both look at every declaration of the period, fired or not, so they take one more pass over the
data (without the candidate join of the one-pass metrics, which only scores the rows where a
profile can reach its own thresholds):

* **indicator firing counts**: per profile and indicator, on how many goods items and how many
  declarations the indicator was true (an indicator that is never true is dead weight, or a
  mistake: a threshold in the wrong unit);
* **threshold sweep**: per profile and degree threshold ``t``, what the profile would select if
  a declaration were selected when its degree (the highest among its goods items that no
  exception excludes) is at least ``t``: selected, selectivity, the control results counted
  (the procedures the profile can apply, or every procedure with ``any_control``), hits, hit
  rate and revenue. The thresholds are 0, 5, …, 100 and the profile's own control thresholds.

Pushed-down profiles are measured set-based in SQL (:func:`diagnose_sql`, a few profiles per
query), the others on the evaluator's explaining path (:func:`diagnose_python`); both give the
same counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.backtest.candidates import _ONE, _ZERO, _flag
from riskengine.backtest.controls import any_sums, procedure_sums
from riskengine.backtest.metrics import money, per
from riskengine.backtest.planned import PlannedProfile
from riskengine.backtest.pushdown import HistoryManySql, HistorySql, _variants, period_rows
from riskengine.semantics import sql as ops
from riskengine.sql.compile import Col

__all__ = ["IndicatorCount", "SweepPoint", "diagnose_python", "diagnose_sql", "sweep_thresholds"]

#: Profiles measured per diagnostic query (each adds a column per indicator and four per
#: threshold; SQLite reads at most 2,000 columns).
BATCH = 8


@attrs.frozen
class IndicatorCount:
    """On how many goods items (``items``) and declarations (``declarations``) of the period an
    indicator was true, wherever the profile applies (a regional profile: where a fill does)."""

    name: str
    items: int
    declarations: int


@attrs.frozen
class SweepPoint:
    """The profile's figures if it selected the declarations whose degree reaches
    ``threshold``."""

    threshold: float
    selected: int
    selectivity: float | None
    controls_carried: int
    hits: int
    hit_rate: float | None
    revenue: Decimal
    revenue_per_control: Decimal | None


@attrs.frozen
class Diagnostics:
    """One profile's indicator counts and sweep."""

    indicators: tuple[IndicatorCount, ...]
    sweep: tuple[SweepPoint, ...]


def sweep_thresholds(pp: PlannedProfile) -> tuple[float, ...]:
    """0, 5, …, 100 and the thresholds of the profile's control forms (its fills' too)."""
    own = {float(c.threshold) for c in pp.profile.controls}
    own |= {float(c.threshold) for f in pp.fills for c in f.controls}
    return tuple(sorted({float(t) for t in range(0, 101, 5)} | {t for t in own if 0 <= t <= 100}))


def _point(
    t: float, considered: int, selected: int, carried: int, hits: int, cents: int
) -> SweepPoint:
    revenue = money(cents)
    return SweepPoint(
        threshold=t,
        selected=selected,
        selectivity=None if considered == 0 else 100.0 * selected / considered,
        controls_carried=carried,
        hits=hits,
        hit_rate=None if carried == 0 else hits / carried,
        revenue=revenue,
        revenue_per_control=per(revenue, carried),
    )


def diagnose_sql(
    connection: sa.Connection,
    source: Any,
    pushed: Sequence[PlannedProfile],
    codes: Sequence[Sequence[str]],
    date_from: dt.date,
    date_to: dt.date,
    dialect: str,
    considered: int,
    any_control: bool,
    history_sql: HistorySql | None = None,
    history_many: HistoryManySql | None = None,
) -> list[Diagnostics]:
    """The diagnostics of pushed-down profiles (``codes[n]``: the procedures profile ``n``
    can apply), :data:`BATCH` profiles per query."""
    out: list[Diagnostics] = []
    for start in range(0, len(pushed), BATCH):
        batch = pushed[start : start + BATCH]
        query = _query(
            source, batch, codes[start : start + BATCH], date_from, date_to, dialect,
            any_control, history_sql, history_many,
        )  # fmt: skip
        with ops.sql_recursion():
            row = connection.execute(query).one()._mapping
        for n, pp in enumerate(batch):
            indicators = tuple(
                IndicatorCount(
                    ind.name, int(row[f"p{n}_i{k}_items"] or 0), int(row[f"p{n}_i{k}_decls"] or 0)
                )
                for k, ind in enumerate(pp.profile.indicators)
            )
            sweep = tuple(
                _point(
                    t,
                    considered,
                    int(row[f"p{n}_t{j}_sel"] or 0),
                    int(row[f"p{n}_t{j}_n"] or 0),
                    int(row[f"p{n}_t{j}_h"] or 0),
                    int(row[f"p{n}_t{j}_r"] or 0),
                )
                for j, t in enumerate(sweep_thresholds(pp))
            )
            out.append(Diagnostics(indicators, sweep))
    return out


def _query(
    source: Any,
    batch: Sequence[PlannedProfile],
    codes: Sequence[Sequence[str]],
    date_from: dt.date,
    date_to: dt.date,
    dialect: str,
    any_control: bool,
    history_sql: HistorySql | None,
    history_many: HistoryManySql | None,
) -> sa.Select[Any]:
    rows, labels, row_source, histories = period_rows(
        source, batch, date_from, date_to, (), history_sql, history_many
    )

    def field(path: str) -> Col:
        label = labels.get(path)
        if label is None or label not in rows.c:
            return sa.null()
        return rows.c[label]

    no_degree: Col = sa.cast(sa.null(), sa.Double())
    # ---- per goods item: each indicator (0/1) and the raw degree (NULL when excluded or when
    # no fill applies), for every profile of the batch
    item_cols: list[Col] = [rows.c.decl_pk, rows.c.item_no]
    for n, pp in enumerate(batch):
        block = pp.profile.history
        variants = _variants(pp, field, dialect, histories.get(block) if block else None)
        for k, ind in enumerate(pp.profile.indicators):
            whens = [(v.guard, _flag(v.compiled.indicators[ind.name])) for v in variants]
            flag = sa.case(*whens, else_=_ZERO) if whens else _ZERO  # no fill: never applies
            item_cols.append(flag.label(f"p{n}_i{k}"))
        degree = [
            (sa.and_(v.guard, sa.not_(v.compiled.excluded)), v.compiled.raw_degree)
            for v in variants
        ]
        item_cols.append(
            (sa.case(*degree, else_=no_degree) if degree else no_degree).label(f"p{n}_raw")
        )
    per_item = sa.select(*item_cols).select_from(row_source).offset(0).cte("diag_items")

    # ---- per declaration: each indicator on any row, on how many goods items; best degree
    is_item = per_item.c.item_no.is_not(None)
    decl_cols: list[Col] = [per_item.c.decl_pk]
    for n, pp in enumerate(batch):
        for k in range(len(pp.profile.indicators)):
            flag = per_item.c[f"p{n}_i{k}"]
            decl_cols.append(sa.func.max(flag).label(f"p{n}_i{k}_any"))
            decl_cols.append(
                sa.func.sum(sa.case((is_item, flag), else_=_ZERO)).label(f"p{n}_i{k}_items")
            )
        decl_cols.append(sa.func.max(per_item.c[f"p{n}_raw"]).label(f"p{n}_best"))
    per_decl = sa.select(*decl_cols).group_by(per_item.c.decl_pk).cte("diag_decls")

    # ---- the control results counted for each profile, per declaration
    all_codes = sorted({c for mine in codes for c in mine})
    cr = source.control_results
    source_from: sa.FromClause = per_decl
    counted: list[tuple[Col, Col, Col]] = []
    if cr is not None:
        pivot = (
            sa.select(cr.c.decl_pk, *procedure_sums(cr, all_codes), *any_sums(cr))
            .group_by(cr.c.decl_pk)
            .cte("diag_controls")
        )
        source_from = per_decl.outerjoin(pivot, pivot.c.decl_pk == per_decl.c.decl_pk)

        def done(name: str) -> Col:
            return sa.func.coalesce(pivot.c[name], _ZERO)

        for mine in codes:
            if any_control:
                counted.append((done("n_all"), done("h_all"), done("r_all")))
                continue
            js = [all_codes.index(c) for c in mine]
            counted.append(
                (
                    _total([done(f"n{j}") for j in js]),
                    _total([done(f"h{j}") for j in js]),
                    _total([done(f"r{j}") for j in js]),
                )
            )
    else:
        counted = [(_ZERO, _ZERO, _ZERO) for _ in codes]

    # ---- the batch's figures in one row
    cols: list[Col] = []
    for n, pp in enumerate(batch):
        for k in range(len(pp.profile.indicators)):
            cols.append(sa.func.sum(per_decl.c[f"p{n}_i{k}_any"]).label(f"p{n}_i{k}_decls"))
            cols.append(sa.func.sum(per_decl.c[f"p{n}_i{k}_items"]).label(f"p{n}_i{k}_items"))
        best = per_decl.c[f"p{n}_best"]
        carried, hits, revenue = counted[n]
        for j, t in enumerate(sweep_thresholds(pp)):
            reached = ops.reaches(best, t)
            cols += [
                sa.func.sum(_flag(reached)).label(f"p{n}_t{j}_sel"),
                sa.func.sum(sa.case((reached, carried), else_=_ZERO)).label(f"p{n}_t{j}_n"),
                sa.func.sum(sa.case((reached, hits), else_=_ZERO)).label(f"p{n}_t{j}_h"),
                sa.func.sum(sa.case((reached, revenue), else_=_ZERO)).label(f"p{n}_t{j}_r"),
            ]
    if not cols:
        cols.append(_ONE.label("nothing"))
    return sa.select(*cols).select_from(source_from)


def _total(parts: Sequence[Col]) -> Col:
    if not parts:
        return _ZERO
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def diagnose_python(
    outcomes_of: Callable[[], Any],
    profiles: Sequence[PlannedProfile],
    codes: Sequence[Sequence[str]],
    considered: int,
    any_control: bool,
) -> list[Diagnostics]:
    """The diagnostics of profiles on the Python fallback, from the declarations scored on
    the explaining path (``outcomes_of()`` streams
    :class:`~riskengine.backtest.fallback.DeclarationOutcome` with their ``diagnosis``)."""
    thresholds = [sweep_thresholds(pp) for pp in profiles]
    items = [[0] * len(pp.profile.indicators) for pp in profiles]
    decls = [[0] * len(pp.profile.indicators) for pp in profiles]
    sweep = [[[0, 0, 0, 0] for _ in ts] for ts in thresholds]
    for outcome in outcomes_of():
        for n, diag in enumerate(outcome.diagnosis):
            if diag is None:
                continue
            for k, (count, anywhere) in enumerate(zip(diag.items, diag.anywhere, strict=True)):
                items[n][k] += count
                decls[n][k] += int(anywhere)
            if diag.best is None:
                continue
            done = _done(outcome, codes[n], any_control)
            for j, t in enumerate(thresholds[n]):
                if t <= 0 or diag.best >= t:
                    acc = sweep[n][j]
                    acc[0] += 1
                    acc[1] += done[0]
                    acc[2] += done[1]
                    acc[3] += done[2]
    out = []
    for n, pp in enumerate(profiles):
        inds = tuple(
            IndicatorCount(ind.name, items[n][k], decls[n][k])
            for k, ind in enumerate(pp.profile.indicators)
        )
        points = tuple(_point(t, considered, *sweep[n][j]) for j, t in enumerate(thresholds[n]))
        out.append(Diagnostics(inds, points))
    return out


def _done(outcome: Any, codes: Sequence[str], any_control: bool) -> tuple[int, int, int]:
    if any_control:
        return tuple(outcome.done_any)
    carried = hits = revenue = 0
    mine: Mapping[str, tuple[int, int, int]] = outcome.done
    for code in codes:
        c, h, r = mine.get(code, (0, 0, 0))
        carried, hits, revenue = carried + c, hits + h, revenue + r
    return carried, hits, revenue
