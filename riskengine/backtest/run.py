"""Running a backtest: plan the profiles, run one pass, roll the counts up, record the run."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.backtest.diagnose import (
    Diagnostics,
    IndicatorCount,
    SweepPoint,
    diagnose_python,
    diagnose_sql,
)
from riskengine.backtest.fallback import (
    DeclarationOutcome,
    FallbackResult,
    profile_codes,
    run_fallback,
    score_declarations,
)
from riskengine.backtest.metrics import (
    GroupCounts,
    ProfileCounts,
    ProfileMetrics,
    Thresholds,
    metrics,
    read_groups,
    roll_up,
)
from riskengine.backtest.planned import DUCKDB_EXPRESSION_DEPTH
from riskengine.backtest.pushdown import (
    BREAKDOWNS,
    PlannedProfile,
    PushdownQuery,
    build_query,
    plan,
)
from riskengine.backtest.selected import Lists, SelectedRow, emit_lists, row_from_outcome
from riskengine.catalogue import Catalogue
from riskengine.diagnostics import RiskEngineError
from riskengine.format import format_fill, format_profile
from riskengine.regional import office_coverage
from riskengine.render.words import plural
from riskengine.semantics.sql import sql_recursion


class BacktestError(RiskEngineError):
    """A backtest cannot run as asked (bad period, unknown breakdown, missing data...)."""


@attrs.frozen
class BacktestOptions:
    """What to measure: the period (inclusive), breakdowns, comparisons, thresholds.

    ``compare`` pairs profile keys ``(a, b)``: a draft against the edition in force, or any
    two profiles of the run. ``any_control`` counts every control result on a profile's
    selections (controls carried out, hits, revenue), not only those of the procedures the
    profile applied to the declaration.
    """

    date_from: dt.date
    date_to: dt.date
    by: tuple[str, ...] = ()
    compare: tuple[tuple[str, str], ...] = ()
    thresholds: Thresholds = attrs.field(factory=Thresholds)
    history: bool = True
    examples: int = 5
    any_control: bool = False
    #: per-indicator firing counts (``ProfileResult.indicators``) and the threshold sweep
    #: (``ProfileResult.sweep``): one more pass (:mod:`riskengine.backtest.diagnose`)
    indicators: bool = False
    sweep: bool = False


@attrs.frozen
class ProfileResult:
    key: str
    name: str
    number: str | None
    path: str  # "sql" or "python"
    reason: str | None  # why it did not run in SQL
    sha256: str
    total: ProfileMetrics
    breakdowns: Mapping[str, tuple[tuple[Any, ProfileMetrics], ...]]
    series: tuple[tuple[str, ProfileMetrics], ...]  # by month, for charts
    #: a regional profile: per office with a fill valid in the period, the days it is valid
    #: (``riskengine.regional.office_coverage``); every other office: not applied, no fill
    #: valid. ``None`` for a profile that is not regional.
    fills_valid: Mapping[str, tuple[tuple[dt.date, dt.date], ...]] | None = None
    indicators: tuple[IndicatorCount, ...] = ()  # with BacktestOptions.indicators
    sweep: tuple[SweepPoint, ...] = ()  # with BacktestOptions.sweep


@attrs.frozen
class Comparison:
    a: str
    b: str
    deltas: Mapping[str, tuple[Any, Any, Any]]  # metric -> (a, b, a - b)
    newly_selected: int
    no_longer_selected: int
    examples_new: tuple[str, ...]
    examples_gone: tuple[str, ...]


@attrs.frozen
class BacktestResult:
    options: BacktestOptions
    engine: str
    considered: int
    profiles: tuple[ProfileResult, ...]
    comparisons: tuple[Comparison, ...]
    seconds: float
    run_id: int | None = None
    #: what the analyst must know to read the figures (e.g. control results that were not
    #: counted because they name another procedure)
    warnings: tuple[str, ...] = ()

    def profile(self, key: str) -> ProfileResult:
        for p in self.profiles:
            if p.key == key:
                return p
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        def conv(value: Any) -> Any:
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, Decimal):  # money: two places, printed as written
                return float(value)
            if isinstance(value, Mapping):
                return {str(k): conv(v) for k, v in value.items()}
            if isinstance(value, tuple | list):
                return [conv(v) for v in value]
            if attrs.has(type(value)):
                return conv(attrs.asdict(value, recurse=False))
            return value

        out: dict[str, Any] = conv(self)
        return out


def profile_sha256(profile: m.Profile, fills: Sequence[m.Fill] = ()) -> str:
    """A hash of the profile's canonical text (and its fills): layout and comments do not
    change it, any change of substance does."""
    text = format_profile(profile) + "".join(format_fill(f) for f in fills)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def planned_from(result: Any) -> list[PlannedProfile]:
    """Profiles of a :class:`~riskengine.checks.CheckResult`, each with its fills and the named
    lists of its own file."""
    fills: list[m.Fill] = list(result.fills)
    out = []
    for source in result.files:
        lists = {ld.name: ld.values for ld in source.lists}
        for profile in source.profiles:
            mine: tuple[m.Fill, ...] = ()
            if profile.number is not None:
                number = str(profile.number)  # a fill names its profile's edition too
                mine = tuple(f for f in fills if str(f.profile) == number)
            out.append(PlannedProfile(profile.key, profile, mine, lists))
    return out


def _fills_valid(
    pp: PlannedProfile, options: BacktestOptions
) -> Mapping[str, tuple[tuple[dt.date, dt.date], ...]] | None:
    if not pp.profile.is_regional:
        return None
    found = office_coverage(pp.profile, pp.fills, options.date_from, options.date_to)
    return {office: tuple(periods) for office, periods in found.items()}


def _dialect(bind: sa.Connection) -> str:
    return bind.dialect.name


@contextlib.contextmanager
def _engine_settings(connection: sa.Connection) -> Iterator[None]:
    """PostgreSQL: no JIT compilation for the backtest's queries (the transaction's setting,
    restored afterwards). The one-pass query has thousands of expressions: compiling them took
    2-4x the time of running it (5,000 declarations: 3.4 s with JIT, 1.0 s without; 50,000:
    37-50 s against 7-13 s). DuckDB: room for deep expressions (``max_expression_depth``
    10,000 instead of 1,000: a profile nested 100 levels deep, guarded, nests deeper)."""
    if _dialect(connection) == "duckdb":
        # expressions as deep as a profile within the limits compiles to (guarded arithmetic)
        previous = connection.exec_driver_sql(
            "SELECT current_setting('max_expression_depth')"
        ).scalar()
        connection.exec_driver_sql(f"SET max_expression_depth TO {DUCKDB_EXPRESSION_DEPTH}")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"SET max_expression_depth TO {int(previous or 1000)}")
        return
    if _dialect(connection) != "postgresql":
        yield
        return
    previous = connection.exec_driver_sql("SELECT current_setting('jit')").scalar()
    connection.exec_driver_sql("SELECT set_config('jit', 'off', true)")
    try:
        yield
    finally:
        with contextlib.suppress(sa.exc.DBAPIError):  # an aborted transaction forgets it anyway
            connection.exec_driver_sql("SELECT set_config('jit', %s, true)", (previous,))


def _zero(n_profiles: int, controls: Sequence[Sequence[str]]) -> GroupCounts:
    return GroupCounts(
        (),
        0,
        0,
        0,
        0,
        0,
        tuple(ProfileCounts(controls_applied={c: 0 for c in codes}) for codes in controls),
    )


def _merge(
    group: GroupCounts,
    planned: Sequence[PlannedProfile],
    pushed_pos: Mapping[int, int],
    fallback_pos: Mapping[int, int],
    fb: FallbackResult | None,
    controls: Sequence[Sequence[str]],
) -> GroupCounts:
    """One group's counts for every planned profile, in plan order: SQL counts for pushed-down
    profiles, the Python fallback's for the others."""
    if not fallback_pos:
        return group
    found = fb.groups.get(group.key) if fb is not None else None
    profiles = []
    for n in range(len(planned)):
        if n in pushed_pos:
            profiles.append(group.profiles[pushed_pos[n]])
        elif found is not None:
            profiles.append(found[fallback_pos[n]])
        else:
            profiles.append(ProfileCounts(controls_applied={c: 0 for c in controls[n]}))
    return attrs.evolve(group, profiles=tuple(profiles))


def _fired(
    connection: sa.Connection,
    small: Callable[[Sequence[int]], PushdownQuery],
    fb: FallbackResult | None,
    fallback_pos: Mapping[int, int],
    n: int,
) -> frozenset[str]:
    """The ids of the declarations profile ``n`` selected (its selections are few)."""
    if n in fallback_pos:
        assert fb is not None
        return fb.fired_ids[fallback_pos[n]]
    return frozenset(str(r[0]) for r in connection.execute(small([n]).fired(0)))


def run_backtest(
    connection: sa.Connection,
    source: Any,
    profiles: Sequence[PlannedProfile],
    options: BacktestOptions,
    *,
    record: bool = True,
    force_python: bool = False,
    catalogue: Catalogue | None = None,
    lists: Lists | None = None,
) -> BacktestResult:
    """Measure every profile over the declarations dated ``date_from``..``date_to``.

    Profiles that can run as SQL on the engine are measured in one pushed-down pass; the others
    (``ProfileResult.path == "python"``, ``reason`` says why) by streaming the same rows through
    the evaluator (:mod:`riskengine.backtest.fallback`). Their counts are merged per breakdown
    group, so totals, breakdowns, series and comparisons read the same either way.

    ``force_python`` runs every profile on the fallback (``reason`` "forced"): the baseline of
    the benchmarks, and an audit of the SQL path. ``catalogue`` is the field catalogue in force
    (``--catalogue``; the built-in one when ``None``): its types reach the SQL compiler and the
    fallback. ``lists`` receives every selected declaration and every change of selection of
    the compared pairs (:mod:`riskengine.backtest.selected`; one more pass in SQL)."""
    if options.date_to < options.date_from:
        raise BacktestError(
            f"the period ends ({options.date_to}) before it starts ({options.date_from})"
        )
    for key in options.by:
        if key not in BREAKDOWNS:
            raise BacktestError(
                f"unknown breakdown {key!r}: use {', '.join(BREAKDOWNS)} (controls are always "
                "broken down by procedure)"
            )
    keys = [pp.key for pp in profiles]
    if len(set(keys)) != len(keys):
        raise BacktestError("two profiles of the run have the same number or name")
    for a, b in options.compare:
        for k in (a, b):
            if k not in keys:
                raise BacktestError(f"cannot compare {k!r}: it is not one of the run's profiles")

    with _engine_settings(connection), sql_recursion():
        result, started_at = _measure(
            connection, source, profiles, options, force_python, catalogue, lists
        )
    if record:
        run_id = _record(connection, result, started_at)
        result = attrs.evolve(result, run_id=run_id)
    return result


def _measure(
    connection: sa.Connection,
    source: Any,
    profiles: Sequence[PlannedProfile],
    options: BacktestOptions,
    force_python: bool,
    catalogue: Catalogue | None = None,
    lists: Lists | None = None,
) -> tuple[BacktestResult, dt.datetime]:
    """The backtest itself (arguments already checked): the result and when it started."""
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    dialect = _dialect(connection)
    # On SQLite the depth trials of deep profiles (planned.py) run only if the one-pass query
    # cannot be prepared; the passes that follow a plain run (indicators, sweeps, comparisons)
    # nest profiles differently, so a run with them plans with the trials from the start.
    lazy = dialect == "sqlite" and not (
        force_python or options.indicators or options.sweep or options.compare
    )
    planned = plan(profiles, dialect, catalogue, trial=not lazy)
    if force_python:
        planned = [attrs.evolve(pp, pushdown=False, reason=pp.reason or "forced") for pp in planned]

    history_sql = history_many = None
    if options.history and source.outcomes is not None:
        from riskengine.store.history import history_select, history_select_many
        from riskengine.store.maintenance import sqlite_has_statistics

        # SQLite with statistics: a planner hint keeps the history joined through automatic
        # indexes (same rows; docs/performance.md, "SQLite after ANALYZE")
        hint = sqlite_has_statistics(connection)

        def history_sql(block: m.History, start: dt.date, end: dt.date) -> sa.Select[Any]:
            return history_select(block, source, start, end, period_hint=hint)

        # blocks with the same subjects (e.g. per declarant, different reasons or windows)
        # share one timeline and one sort
        def history_many(
            blocks: Sequence[m.History], start: dt.date, end: dt.date, items: bool = True
        ) -> sa.Select[Any]:
            return history_select_many(blocks, source, start, end, items, period_hint=hint)

    group_by = tuple(sorted(set(options.by) | {"month"}, key=list(BREAKDOWNS).index))
    index = {pp.key: n for n, pp in enumerate(planned)}
    pairs = tuple((index[a], index[b]) for a, b in options.compare)

    def one_pass(planned: list[PlannedProfile]) -> tuple[PushdownQuery, list[dict[str, Any]]]:
        query = build_query(
            source,
            planned,
            options.date_from,
            options.date_to,
            dialect,
            group_by=group_by,
            history_sql=history_sql,
            history_many=history_many,
        )
        return query, query.fetch(connection)

    try:
        query, rows = one_pass(planned)
    except sa.exc.DBAPIError:
        if not lazy:
            raise
        # SQLite could not prepare it: plan with the depth trials, which send the profiles
        # beyond its parser's depth to Python with their reason, and run again
        tried = plan(profiles, dialect, catalogue)
        if [pp.pushdown for pp in tried] == [pp.pushdown for pp in planned]:
            raise
        planned = tried
        query, rows = one_pass(planned)
    pushed_pos: dict[int, int] = {}
    fallback_pos: dict[int, int] = {}
    for n, pp in enumerate(planned):
        if pp.pushdown:
            pushed_pos[n] = len(pushed_pos)
        else:
            fallback_pos[n] = len(fallback_pos)
    sql_groups = read_groups(rows, group_by, query.controls)

    fallback_planned = [pp for pp in planned if not pp.pushdown]
    fallback_codes = [profile_codes(pp) for pp in fallback_planned]
    fb: FallbackResult | None = None
    # the selected lists of the profiles on the fallback, by plan position (when asked)
    fallback_rows: dict[int, list[SelectedRow]] = {}
    wanted: set[int] = set()
    if lists is not None:
        if lists.selected is not None:
            wanted = set(fallback_pos)
        if lists.changed is not None:
            wanted |= {n for pair in pairs for n in pair if n in fallback_pos}
    on_declaration = None
    if wanted:
        by_fallback = {k: n for n, k in fallback_pos.items() if n in wanted}

        def on_declaration(outcome: DeclarationOutcome) -> None:
            for k, n in by_fallback.items():
                if outcome.fired[k]:
                    row = row_from_outcome(planned[n].key, outcome, k, options.any_control)
                    fallback_rows.setdefault(n, []).append(row)

    if fallback_planned:
        fb = run_fallback(
            connection,
            source,
            fallback_planned,
            options.date_from,
            options.date_to,
            group_by,
            fallback_codes,
            history_sql,
            history_many=history_many,
            # selected ids are kept only for comparisons with a profile measured in Python
            keep_ids=[fallback_pos[n] for pair in pairs for n in pair if n in fallback_pos],
            on_declaration=on_declaration,
        )
        for rows_n in fallback_rows.values():
            rows_n.sort(key=lambda r: r.declaration)
    controls: list[tuple[str, ...]] = [
        tuple(query.controls[pushed_pos[n]]) if n in pushed_pos
        else fallback_codes[fallback_pos[n]]
        for n in range(len(planned))
    ]  # fmt: skip
    groups = [_merge(g, planned, pushed_pos, fallback_pos, fb, controls) for g in sql_groups]
    [total] = roll_up(groups, group_by, ()) or [_zero(len(planned), controls)]

    results = []
    for n, pp in enumerate(planned):
        breakdowns = {
            key: tuple(
                (g.key[0], metrics(g, n, options.thresholds, options.any_control))
                for g in roll_up(groups, group_by, (key,))
            )
            for key in options.by
        }
        series = tuple(
            (str(g.key[0]), metrics(g, n, options.thresholds, options.any_control))
            for g in roll_up(groups, group_by, ("month",))
        )
        results.append(
            ProfileResult(
                key=pp.key,
                name=pp.profile.name,
                number=str(pp.profile.number) if pp.profile.number else None,
                path="sql" if pp.pushdown else "python",
                reason=pp.reason,
                sha256=profile_sha256(pp.profile, pp.fills),
                total=metrics(total, n, options.thresholds, options.any_control),
                breakdowns=breakdowns,
                series=series,
                fills_valid=_fills_valid(pp, options),
            )
        )

    if options.indicators or options.sweep:
        diags = _diagnose(
            connection, source, planned, controls, options, dialect, total.considered,
            history_sql, history_many,
        )  # fmt: skip
        results = [
            attrs.evolve(
                r,
                indicators=d.indicators if options.indicators else (),
                sweep=d.sweep if options.sweep else (),
            )
            for r, d in zip(results, diags, strict=True)
        ]

    def small(ns: Sequence[int]) -> PushdownQuery:
        """The pass of a few pushed-down profiles only (comparisons, selected ids)."""
        return build_query(
            source,
            [planned[n] for n in ns],
            options.date_from,
            options.date_to,
            dialect,
            history_sql=history_sql,
            history_many=history_many,
        )

    comparisons = []
    for (a, b), (ia, ib) in zip(options.compare, pairs, strict=True):
        ma, mb = results[ia].total, results[ib].total
        deltas = {}
        for field in ("selected", "selectivity", "controls_carried", "hits", "hit_rate",
                      "revenue", "detection_share"):  # fmt: skip
            va, vb = getattr(ma, field), getattr(mb, field)
            deltas[field] = (va, vb, None if va is None or vb is None else va - vb)
        if ia in pushed_pos and ib in pushed_pos:
            # the two profiles alone, in their own (small) pass: 0 is a, 1 is b
            q = small([ia, ib])
            new, gone = (int(x) for x in connection.execute(q.compare(0, 1)).one())
            ex_new, ex_gone = (
                tuple(str(r[0]) for r in connection.execute(q.examples(0, 1, k, options.examples)))
                for k in (True, False)
            )
        else:
            # at least one side ran in Python: compare the sets of selected declarations
            fa = _fired(connection, small, fb, fallback_pos, ia)
            fb_ = _fired(connection, small, fb, fallback_pos, ib)
            new, gone = len(fa - fb_), len(fb_ - fa)
            ex_new = tuple(sorted(fa - fb_)[: options.examples])
            ex_gone = tuple(sorted(fb_ - fa)[: options.examples])
        comparisons.append(Comparison(a, b, deltas, new, gone, ex_new, ex_gone))

    if lists is not None and (lists.selected is not None or lists.changed is not None):
        detail = None
        if pushed_pos:
            detail = build_query(
                source, planned, options.date_from, options.date_to, dialect,
                history_sql=history_sql, history_many=history_many, fired_degree=True,
            )  # fmt: skip
        emit_lists(
            connection, lists, keys_of(planned), pushed_pos, fallback_rows, pairs, detail,
            options.any_control,
        )  # fmt: skip

    result = BacktestResult(
        options=options,
        engine=dialect,
        considered=total.considered,
        profiles=tuple(results),
        comparisons=tuple(comparisons),
        seconds=time.perf_counter() - started,
        warnings=tuple(unmatched_controls(planned, controls, total, options.any_control)),
    )
    return result, started_at


def _diagnose(
    connection: sa.Connection,
    source: Any,
    planned: Sequence[PlannedProfile],
    controls: Sequence[Sequence[str]],
    options: BacktestOptions,
    dialect: str,
    considered: int,
    history_sql: Any,
    history_many: Any,
) -> list[Diagnostics]:
    """Indicator counts and sweep of every profile, in plan order: the pushed-down ones in SQL,
    the others on the evaluator's explaining path."""
    pushed = [n for n, pp in enumerate(planned) if pp.pushdown]
    python = [n for n, pp in enumerate(planned) if not pp.pushdown]
    out: dict[int, Diagnostics] = {}
    if pushed:
        found = diagnose_sql(
            connection, source, [planned[n] for n in pushed], [controls[n] for n in pushed],
            options.date_from, options.date_to, dialect, considered, options.any_control,
            history_sql, history_many,
        )  # fmt: skip
        out.update(zip(pushed, found, strict=True))
    if python:
        mine = [planned[n] for n in python]
        codes = [controls[n] for n in python]

        def outcomes() -> Any:
            return score_declarations(
                connection, source, mine, options.date_from, options.date_to, (), history_sql,
                history_many=history_many, control_codes=sorted({c for cs in codes for c in cs}),
                explained=True,
            )  # fmt: skip

        found = diagnose_python(outcomes, mine, codes, considered, options.any_control)
        out.update(zip(python, found, strict=True))
    return [out[n] for n in range(len(planned))]


def keys_of(planned: Sequence[PlannedProfile]) -> list[str]:
    return [pp.key for pp in planned]


def unmatched_controls(
    planned: Sequence[PlannedProfile],
    controls: Sequence[Sequence[str]],
    total: GroupCounts,
    any_control: bool,
) -> list[str]:
    """A warning per profile whose selected declarations have control results but none for a
    procedure the profile applied to them: its hit rate would read "—" although its
    selections were inspected (typically data whose control results do not name the
    procedure ordered)."""
    out = []
    for n, pp in enumerate(planned):
        c = total.profiles[n]
        if c.selected and c.controls_any and not c.controls_carried:
            codes = ", ".join(controls[n]) or "none"
            counted = (
                "they are counted (--any-control)"
                if any_control
                else "0 controls counted; --any-control counts them"
            )
            out.append(
                f"{pp.key}: its {plural(c.selected, 'selected declaration')} "
                f"{'has' if c.selected == 1 else 'have'} "
                f"{plural(c.controls_any, 'control result')}, none for a procedure it applied "
                f"({codes}): {counted}"
            )
    return out


def _record(connection: sa.Connection, result: BacktestResult, started_at: dt.datetime) -> int:
    """Append the run to ``backtest_runs`` so a figure shown to the commission can be traced
    to its parameters, the exact profile texts (hashes) and the engine."""
    from riskengine.store.schema import build_tables
    from riskengine.store.writer import allocate_keys

    runs = build_tables().backtest_runs
    data = result.to_json()
    pk = allocate_keys(connection, runs, 1)
    connection.execute(
        runs.insert().values(
            pk=pk,
            started_at=started_at,
            finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            engine=result.engine,
            parameters=data["options"],
            profile_hashes={p.key: p.sha256 for p in result.profiles},
            results={
                "considered": data["considered"],
                "profiles": data["profiles"],
                "comparisons": data["comparisons"],
            },
        )
    )
    connection.commit()
    return pk
