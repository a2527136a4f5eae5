"""Python backtests for profiles that cannot run as SQL: rows streamed through the evaluator.

The rows are the pushdown query's own (every field the profiles read, one row per goods item,
with the same set-based history joined per item, and the declaration's control results pivoted
by procedure), read in chunks ordered by declaration, so memory stays bounded by one
declaration and the counts per breakdown group. Each
declaration is scored with ``as_of`` = its date; the counts per breakdown group are the same
additive :class:`~riskengine.backtest.metrics.ProfileCounts` the SQL path returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.backtest.metrics import ProfileCounts
from riskengine.backtest.pushdown import (
    BREAKDOWNS,
    HistoryManySql,
    HistorySql,
    PlannedProfile,
    any_sums,
    cents,
    period_rows,
    procedure_sums,
)
from riskengine.evaluator.compiled import EMPTY_ITEMS, CompiledProfile
from riskengine.evaluator.history import NO_HISTORY, HistoryValue, history_block, subject_of

#: Rows fetched per round trip when streaming item rows.
CHUNK = 5_000


@attrs.frozen
class DeclarationOutcome:
    """One declaration scored by the Python fallback: per profile, fired or not, the highest
    degree among fired items (``None`` when it did not fire) and the procedure codes applied."""

    decl_pk: Any
    decl_id: str | None
    key: tuple[Any, ...]  # breakdown group key
    fired: tuple[bool, ...]
    degree: tuple[float | None, ...]
    codes: tuple[frozenset[str], ...]
    #: the declaration's control results per procedure code asked for (``control_codes``):
    #: controls carried out, hits, revenue in cents
    done: Mapping[str, tuple[int, int, int]] = attrs.field(factory=dict)
    #: every control result of the declaration, whatever the procedure: the same three counts
    done_any: tuple[int, int, int] = (0, 0, 0)
    date: Any = None
    office: Any = None
    #: with ``explained``: per profile, its :class:`Diagnosis` on the declaration
    diagnosis: tuple[Diagnosis | None, ...] = ()


@attrs.frozen
class Diagnosis:
    """What one profile computed on one declaration, fired or not: per indicator, on how many
    goods items it was true (``items``) and whether on any row (``anywhere``: a declaration
    without goods items is one row with every item field missing), and the highest degree
    among the rows no exception excluded (``None`` when every row was excluded)."""

    items: tuple[int, ...]
    anywhere: tuple[bool, ...]
    best: float | None


class _DeclHistory:
    """A history provider for one declaration: the values joined to its item rows, by subject."""

    def __init__(self) -> None:
        self.values: dict[tuple[m.History, tuple[Any, ...]], HistoryValue] = {}

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        block = history_block(profile)
        if block is None:
            return NO_HISTORY
        return self.values.get((block, tuple(subject)), NO_HISTORY)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _month(value: Any) -> str | None:
    if value is None:
        return None
    return f"{value.year:04d}-{value.month:02d}"


def compile_fallback(pp: PlannedProfile) -> CompiledProfile:
    """The evaluator's compiled form of a planned profile (its file's lists, its fills, the
    field types of the catalogue in force)."""
    return CompiledProfile(pp.profile, lists=pp.lists, fills=pp.fills, types=pp.types)


def score_declarations(
    connection: sa.Connection,
    source: Any,
    profiles: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    group_by: Sequence[str] = (),
    history_sql: HistorySql | None = None,
    chunk: int = CHUNK,
    history_many: HistoryManySql | None = None,
    control_codes: Sequence[str] = (),
    explained: bool = False,
) -> Iterator[DeclarationOutcome]:
    """Stream every declaration dated ``date_from``..``date_to`` scored by each profile.

    With ``control_codes``, each outcome carries the declaration's control results for those
    procedure codes (``DeclarationOutcome.done``), read in the same stream: nothing of the
    period is held in memory but the current declaration's rows. ``explained`` also gives each
    profile's :class:`Diagnosis` (on the evaluator's explaining path, slower)."""
    compiled = [compile_fallback(pp) for pp in profiles]
    rows, labels, row_source, histories = period_rows(
        source, profiles, date_from, date_to, group_by, history_sql, history_many,
        also=("declaration.office",),
    )  # fmt: skip
    paths = sorted(p for p, label in labels.items() if label in rows.c)

    cols: list[Any] = [rows.c.decl_pk, rows.c.decl_id, rows.c.item_no]
    cols += [rows.c[labels[p]] for p in paths]
    blocks: dict[m.History, int] = {}
    for k, (block, (negative, positive)) in enumerate(histories.items()):
        cols += [negative.label(f"hn{k}"), positive.label(f"hp{k}")]
        blocks[block] = k
    codes = tuple(sorted(set(control_codes)))
    cr = source.control_results
    with_controls = cr is not None
    if cr is not None:
        pivot = _controls_pivot(cr, codes)
        row_source = row_source.outerjoin(pivot, pivot.c.decl_pk == rows.c.decl_pk)
        for j in range(len(codes)):
            cols += [pivot.c[f"n{j}"], pivot.c[f"h{j}"], pivot.c[f"r{j}"]]
        cols += [pivot.c.n_all, pivot.c.h_all, pivot.c.r_all]
    else:
        codes = ()
    query = (
        sa.select(*cols)
        .select_from(row_source)
        .order_by(rows.c.decl_pk, rows.c.item_no)
        .execution_options(stream_results=True, yield_per=chunk)
    )

    def finish(pk: Any, ident: Any, raw: list[Mapping[str, Any]]) -> DeclarationOutcome:
        outcome = _score(pk, ident, raw, compiled, blocks, group_by, explained)
        return attrs.evolve(outcome, done=done, done_any=done_any)

    current: Any = object()
    ident: Any = None
    pending: list[Mapping[str, Any]] = []
    done: dict[str, tuple[int, int, int]] = {}
    done_any = (0, 0, 0)
    for row in connection.execute(query):
        r = row._mapping
        if r["decl_pk"] != current:
            if pending:
                yield finish(current, ident, pending)
            current, ident, pending = r["decl_pk"], r["decl_id"], []
            done = {}
            for j, code in enumerate(codes):
                if r[f"n{j}"]:
                    done[code] = (int(r[f"n{j}"]), int(r[f"h{j}"] or 0), int(r[f"r{j}"] or 0))
            if with_controls and r["n_all"]:
                done_any = (int(r["n_all"]), int(r["h_all"] or 0), int(r["r_all"] or 0))
            else:
                done_any = (0, 0, 0)
        values: dict[str, Any] = {"item_no": r["item_no"]}
        for p in paths:
            values[p] = _plain(r[labels[p]])
        for k in blocks.values():
            values[f"hn{k}"] = _plain(r[f"hn{k}"])
            values[f"hp{k}"] = _plain(r[f"hp{k}"])
        pending.append(values)
    if pending:
        yield finish(current, ident, pending)


def _score(
    pk: Any,
    ident: Any,
    raw: list[Mapping[str, Any]],
    compiled: Sequence[CompiledProfile],
    blocks: Mapping[m.History, int],
    group_by: Sequence[str],
    explained: bool = False,
) -> DeclarationOutcome:
    first = raw[0]
    header = {
        p[len("declaration.") :]: v
        for p, v in first.items()
        if p.startswith("declaration.") and v is not None
    }
    has_items = first["item_no"] is not None
    items: tuple[Mapping[str, Any], ...] = (
        tuple(
            {p[len("item.") :]: v for p, v in r.items() if p.startswith("item.") and v is not None}
            for r in raw
        )
        if has_items
        else EMPTY_ITEMS
    )
    hist = _DeclHistory()
    for block, k in blocks.items():
        for r in raw:
            subject = subject_of(block, r)
            if subject is not None:
                hist.values[(block, subject)] = HistoryValue(
                    float(r[f"hn{k}"] or 0.0), float(r[f"hp{k}"] or 0.0)
                )
    as_of = first["declaration.date"]
    office = header.get("office")
    fired: list[bool] = []
    degree: list[float | None] = []
    codes: list[frozenset[str]] = []
    diagnosis: list[Diagnosis | None] = []
    for cp in compiled:
        fill = None
        result = None
        if cp.regional:
            fill = cp.fill_for(office, as_of)
        if explained:
            if cp.regional and fill is None:
                diagnosis.append(None)
            else:
                args = (cp.variant(fill), header, items, cp.region(fill), hist.history, as_of)
                result, explanation = cp.run_explained(*args, has_items, fill)
                diagnosis.append(_diagnosis(explanation, has_items))
        elif not cp.regional or fill is not None:
            result = cp.run(
                cp.variant(fill), header, items, cp.region(fill), hist.history, as_of, has_items
            )
        fired.append(result is not None)
        degree.append(None if result is None else float(result.degree))
        codes.append(frozenset() if result is None else frozenset(f.code for f in result.controls))
    key = tuple(
        _month(first["declaration.date"]) if k == "month" else first.get(BREAKDOWNS[k] or "")
        for k in group_by
    )
    return DeclarationOutcome(
        pk, ident, key, tuple(fired), tuple(degree), tuple(codes), date=as_of, office=office,
        diagnosis=tuple(diagnosis),
    )  # fmt: skip


def _diagnosis(explanation: Any, has_items: bool) -> Diagnosis:
    rows = explanation.items
    names = len(rows[0].indicators) if rows else 0
    items = [0] * names
    anywhere = [False] * names
    best: float | None = None
    for row in rows:
        for k, ind in enumerate(row.indicators):
            if ind.value:
                anywhere[k] = True
                items[k] += 1 if has_items else 0
        if row.exception is None:
            best = row.degree if best is None else max(best, row.degree)
    return Diagnosis(tuple(items), tuple(anywhere), None if best is None else float(best))


def _controls_pivot(cr: sa.FromClause, codes: Sequence[str]) -> sa.Subquery:
    """Per declaration with control results: ``n{j}`` controls carried out, ``h{j}`` hits and
    ``r{j}`` revenue (cents) for procedure ``codes[j]``, and ``n_all``, ``h_all``, ``r_all`` for
    every procedure."""
    return (
        sa.select(cr.c.decl_pk, *procedure_sums(cr, codes), *any_sums(cr))
        .group_by(cr.c.decl_pk)
        .subquery("controls_done")
    )


def control_results(
    connection: sa.Connection, source: Any, date_from: dt.date, date_to: dt.date
) -> dict[Any, dict[str, tuple[int, int, int]]]:
    """Per declaration of the period and procedure: controls carried out, hits, revenue
    (cents)."""
    cr = source.control_results
    if cr is None:
        return {}
    d = source.declarations
    date = source.field("declaration.date")
    violation = sa.case((cr.c.violation_found == sa.true(), 1), else_=0)
    query = (
        sa.select(
            cr.c.decl_pk,
            cr.c.procedure,
            sa.func.count(),
            sa.func.sum(violation),
            sa.func.sum(cents(cr.c.revenue)),
        )
        .select_from(cr.join(d, d.c.pk == cr.c.decl_pk))
        .where(date >= date_from, date <= date_to)
        .group_by(cr.c.decl_pk, cr.c.procedure)
    )
    out: dict[Any, dict[str, tuple[int, int, int]]] = {}
    for pk, procedure, n, hits, revenue in connection.execute(query):
        out.setdefault(pk, {})[str(procedure)] = (int(n), int(hits or 0), int(revenue or 0))
    return out


@attrs.frozen
class FallbackResult:
    """Counts per breakdown group for each fallback profile, and who fired (for comparisons)."""

    groups: Mapping[tuple[Any, ...], tuple[ProfileCounts, ...]]
    fired_ids: tuple[frozenset[str], ...]


def run_fallback(
    connection: sa.Connection,
    source: Any,
    profiles: Sequence[PlannedProfile],
    date_from: dt.date,
    date_to: dt.date,
    group_by: Sequence[str],
    controls: Sequence[Sequence[str]],
    history_sql: HistorySql | None = None,
    on_declaration: Callable[[DeclarationOutcome], None] | None = None,
    history_many: HistoryManySql | None = None,
    keep_ids: Collection[int] | None = None,
) -> FallbackResult:
    """Score the period with the evaluator and aggregate like the SQL path's layer 4.

    ``controls[n]`` lists the procedure codes profile ``n`` can apply (every count is reported
    for each of them, 0 included). The declarations and their control results are streamed;
    memory holds the counts per breakdown group and, for the profiles in ``keep_ids`` (all when
    ``None``), the ids of the declarations they selected (``FallbackResult.fired_ids``; empty
    for the others), which comparisons need.
    """
    groups: dict[tuple[Any, ...], list[ProfileCounts]] = {}
    fired_ids: list[set[str]] = [set() for _ in profiles]
    keep = set(range(len(profiles))) if keep_ids is None else set(keep_ids)
    zero = [ProfileCounts(controls_applied={c: 0 for c in codes}) for codes in controls]
    codes_needed = sorted({c for codes in controls for c in codes})
    for outcome in score_declarations(
        connection, source, profiles, date_from, date_to, group_by, history_sql,
        history_many=history_many, control_codes=codes_needed,
    ):  # fmt: skip
        if on_declaration is not None:
            on_declaration(outcome)
        counts = groups.setdefault(outcome.key, list(zero))
        mine = outcome.done
        for n, fired in enumerate(outcome.fired):
            if not fired:
                continue
            if n in keep:
                fired_ids[n].add(str(outcome.decl_id))
            applied = outcome.codes[n]
            carried = hits = revenue = 0
            for code in applied:
                c, h, r = mine.get(code, (0, 0, 0))
                carried += c
                hits += h
                revenue += r
            counts[n] = counts[n] + ProfileCounts(
                1, {code: 1 for code in applied}, carried, hits, revenue, *outcome.done_any
            )
    return FallbackResult(
        {k: tuple(v) for k, v in groups.items()}, tuple(frozenset(s) for s in fired_ids)
    )


def profile_codes(pp: PlannedProfile) -> tuple[str, ...]:
    """Every procedure code a profile can apply, as the SQL path lists them: a regional
    profile's are those of its fills (a fill's own controls, or the profile's)."""
    if not pp.profile.is_regional:
        return tuple(sorted({c.code for c in pp.profile.controls}))
    codes: set[str] = set()
    for fill in pp.fills:
        if fill.valid is not None and fill.office is not None:
            codes |= {c.code for c in (fill.controls or pp.profile.controls)}
    return tuple(sorted(codes))
