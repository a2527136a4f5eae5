"""History from the store: the set-based query for every declaration of a backtest (one block at
a time, and every block of the sample profiles), against the range-join query it replaced and a
single scan of the outcomes table, all measured in the same run; and the single lookup for online
scoring (uncached and cached).

    python benchmarks/bench_history.py                             # 100,000 declarations, SQLite
    python benchmarks/bench_history.py --declarations 1000000      # the 1 M figure of the docs
    python benchmarks/bench_history.py --backend postgresql --backend duckdb
    python benchmarks/bench_history.py --url duckdb:///big.duckdb  # a store that has demo data
    python benchmarks/bench_history.py --scoring    # online scoring, SQLite and PostgreSQL, 10k

``--scoring`` measures scoring the sample profiles with history from the store instead: old
provider, new provider uncached and with a warm cache (``benchmarks/history_scoring.py``).

The replaced query (``old_history_select`` below, kept here for comparison only) joined each
(date, subject) key with every event of its subject on a date range; at 1 M declarations it runs
for many minutes per block, so it is timed only up to 200,000 declarations unless ``--old``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_ingest import fresh_store  # noqa: E402

from riskengine import demo  # noqa: E402
from riskengine import model as m  # noqa: E402
from riskengine.semantics.history import weight_sql  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402
from riskengine.store.history import (  # noqa: E402
    HistoryTerms,
    SqlHistoryProvider,
    history_for_range,
    history_select,
    history_select_many,
)
from riskengine.store.history.subjects import check_subjects, subject_expr  # noqa: E402
from riskengine.store.schema import TABLES  # noqa: E402
from riskengine.store.source import StoreSource, native_source  # noqa: E402

#: The history blocks of two sample profiles: undervaluation (declarant and HS heading, one
#: year) and precursors (importer, three years).
BLOCKS = {
    "declarant + hs[:4], 365 d": m.History(
        subjects=(
            m.HistorySubject(m.FieldRef("declaration.declarant.id")),
            m.HistorySubject(m.FieldRef("item.hs_code"), 4),
        ),
        window_days=365,
        negative=m.NegativeHistory(
            max=Decimal(30),
            per_case=Decimal(10),
            reasons=tuple(
                m.ReasonCoefficient(c, Decimal(k))
                for c, k in (
                    ("0201", "1.0"),
                    ("0502", "0.6"),
                    ("0402", "0.5"),
                    ("0302", "0.4"),
                    ("0101", "0.1"),
                )
            ),
        ),
        positive=m.PositiveHistory(max=Decimal(20), step=Decimal(4)),
    ),
    "importer, 1095 d": m.History(
        subjects=(m.HistorySubject(m.FieldRef("declaration.importer.id")),),
        window_days=1095,
        negative=m.NegativeHistory(
            max=Decimal(40),
            per_case=Decimal(20),
            reasons=tuple(
                m.ReasonCoefficient(c, Decimal(k))
                for c, k in (
                    ("0801", "1.0"),
                    ("1001", "0.8"),
                    ("1201", "0.8"),
                    ("0503", "0.6"),
                    ("0104", "0.5"),
                )
            ),
        ),
        positive=m.PositiveHistory(max=Decimal(5), step=Decimal(1)),
    ),
}


# --- the replaced query, for comparison only ---------------------------------------------------


class _days_before(FunctionElement[dt.date]):
    name = "bench_days_before"
    inherit_cache = True
    type = sa.Date()


@compiles(_days_before)
def _days_before_default(element: _days_before, compiler: Any, **kw: Any) -> str:
    date, days = (compiler.process(c, **kw) for c in element.clauses)
    return f"({date} - CAST({days} AS INTEGER) * INTERVAL '1 day')"


@compiles(_days_before, "sqlite")
def _days_before_sqlite(element: _days_before, compiler: Any, **kw: Any) -> str:
    date, days = (compiler.process(c, **kw) for c in element.clauses)
    return f"date({date}, '-' || CAST({days} AS TEXT) || ' days')"


@compiles(_days_before, "duckdb")
def _days_before_duckdb(element: _days_before, compiler: Any, **kw: Any) -> str:
    date, days = (compiler.process(c, **kw) for c in element.clauses)
    return f"({date} - to_days(CAST({days} AS INTEGER)))"


def old_history_select(
    block: m.History, source: StoreSource, start: dt.date | None, end: dt.date | None
) -> sa.Select[Any]:
    """The range-join query that ``history_select`` replaced (same columns, same values)."""
    terms = HistoryTerms.of(block)
    check_subjects(terms, source)
    outcomes, reasons, controls = source.require("outcomes", "outcome_reasons", "control_results")
    n = len(terms.subjects)
    d = source.declarations.alias("d")
    i = source.items.alias("i")
    targets = sa.select(
        d.c.pk.label("decl_pk"),
        i.c.item_no,
        d.c.date.label("as_of"),
        *(
            subject_expr(source, path, prefix, i if path.startswith("item.") else d).label(f"s{k}")
            for k, (path, prefix) in enumerate(terms.subjects)
        ),
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
    p = source.declarations.alias("p")

    def base(b: sa.FromClause, key: Any) -> sa.FromClause:
        return b.join(p, p.c.pk == key)

    subject_of_p = []
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
            .distinct()
            .subquery("item_keys")
        )

        def base(b: sa.FromClause, key: Any) -> sa.FromClause:
            return b.join(p, p.c.pk == key).join(item_keys, item_keys.c.decl_pk == p.c.pk)

    for k, (path, prefix) in enumerate(terms.subjects):
        if path.startswith("item."):
            subject_of_p.append(item_keys.c[f"s{k}"].label(f"s{k}"))
        else:
            subject_of_p.append(subject_expr(source, path, prefix, p).label(f"s{k}"))
    r = reasons.alias("r")
    scored = (
        sa.select(
            r.c.decl_pk,
            sa.func.max(
                sa.case(
                    {code: sa.literal(u, sa.BigInteger) for code, u in terms.units.items()},
                    value=r.c.reason_code,
                )
            ).label("units"),
        )
        .where(r.c.reason_code.in_(list(terms.units)))
        .group_by(r.c.decl_pk)
        .subquery("scored")
    )
    o = outcomes.alias("o")
    negative = (
        sa.select(*subject_of_p, o.c.date.label("event_date"), scored.c.units)
        .select_from(base(o.join(scored, scored.c.decl_pk == o.c.decl_pk), o.c.decl_pk))
        .where(o.c.completed.is_(False))
        .subquery("negative_events")
    )
    c = controls.alias("c")
    positive = (
        sa.select(*subject_of_p, c.c.date.label("event_date"))
        .select_from(base(c, c.c.decl_pk))
        .where(c.c.violation_found.is_(False))
        .subquery("positive_events")
    )
    window = sa.bindparam("window_days", terms.window_days, type_=sa.Integer)

    def aggregate(events: sa.Subquery, value: Any, name: str) -> sa.Subquery:
        return (
            sa.select(keys.c.as_of, *(keys.c[f"s{k}"] for k in range(n)), value.label(name))
            .select_from(
                keys.join(
                    events,
                    sa.and_(
                        *(events.c[f"s{k}"] == keys.c[f"s{k}"] for k in range(n)),
                        events.c.event_date >= _days_before(keys.c.as_of, window),
                        events.c.event_date < keys.c.as_of,
                    ),
                )
            )
            .group_by(keys.c.as_of, *(keys.c[f"s{k}"] for k in range(n)))
            .subquery(f"{name}_by_subject")
        )

    def on(agg: sa.Subquery) -> Any:
        return sa.and_(
            agg.c.as_of == t.c.as_of, *(agg.c[f"s{k}"] == t.c[f"s{k}"] for k in range(n))
        )

    neg = aggregate(negative, sa.func.sum(negative.c.units), "negative_units")
    pos = aggregate(positive, sa.func.count(), "clean_controls")
    negative_units = sa.func.coalesce(neg.c.negative_units, 0)
    clean_controls = sa.func.coalesce(pos.c.clean_controls, 0)
    negative_sql = weight_sql(terms.negative, negative_units)
    positive_sql = weight_sql(terms.positive, clean_controls)
    return sa.select(
        t.c.decl_pk,
        t.c.item_no,
        t.c.as_of,
        negative_units.label("negative_units"),
        clean_controls.label("clean_controls"),
        negative_sql.label("negative_history"),
        positive_sql.label("positive_history"),
    ).select_from(t.outerjoin(neg, on(neg)).outerjoin(pos, on(pos)))


# --- measuring -------------------------------------------------------------------------------


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def summed(query: sa.Select[Any]) -> Any:
    """The query's integer columns summed in the database (how a pushed-down backtest reads it:
    nothing but the totals travels to Python)."""
    inner = query.subquery()
    return sa.select(
        sa.func.count(),
        *(sa.func.sum(c) for c in inner.c if c.name.startswith(("negative_units", "clean"))),
    )


def profile_blocks() -> list[m.History]:
    """The history blocks of the sample profiles in ``profiles/``."""
    from riskengine.backtest.run import planned_from
    from riskengine.catalogue import catalogue_with
    from riskengine.checks import load_checked
    from riskengine.cli.common import expand_paths

    checked = load_checked(expand_paths((str(ROOT / "profiles"),)), catalogue_with(None))
    return [pp.profile.history for pp in planned_from(checked) if pp.profile.history is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=100_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "duckdb"])
    parser.add_argument("--url", help="use this store (with demo data) instead of a new one")
    parser.add_argument("--lookups", type=int, default=2_000, help="single lookups to time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scoring",
        action="store_true",
        help="score the sample profiles with history (10,000 declarations, SQLite and "
        "PostgreSQL unless --backend/--declarations say otherwise)",
    )
    parser.add_argument("--sample", type=int, default=500, help="--scoring: declarations timed")
    parser.add_argument("--profiles", default=str(ROOT / "profiles"), help="--scoring: profiles")
    parser.add_argument(
        "--generated",
        type=int,
        default=1000,
        help="--scoring: also a set of this many profiles, the samples and generated ones "
        "(benchmarks/gen_profiles.py); 0: the samples only",
    )
    old = parser.add_mutually_exclusive_group()
    old.add_argument("--old", action="store_true", default=None, help="time the replaced query")
    old.add_argument("--no-old", dest="old", action="store_false")
    args = parser.parse_args()
    if args.scoring:
        from history_scoring import run_scoring

        if "--declarations" not in sys.argv:
            args.declarations = 10_000
        with tempfile.TemporaryDirectory() as folder:
            if args.generated:
                from gen_profiles import write_profiles

                args.generated_dir = str(Path(folder) / "generated")
                write_profiles(args.generated - 9, Path(args.generated_dir))
            figures = {}
            for backend in args.backend or ["sqlite", "postgresql"]:
                with fresh_store(backend, folder) as engine:
                    figures[backend] = run_scoring(engine, backend, args)
        scoring_summary(figures)
        return
    if args.url:
        engine = connect(args.url)
        try:
            run(engine, engine.dialect.name, args, fill=False)
        finally:
            engine.dispose()
        return
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backend or ["sqlite"]:
            with fresh_store(backend, folder) as engine:
                run(engine, backend, args, fill=True)


def scoring_summary(figures: dict[str, dict[str, dict[str, float]]]) -> None:
    """The issue's history targets against the figures of this run."""
    print("targets (issue 13), from this run:")
    for backend, sets in figures.items():
        for label, f in sets.items():
            ratio = f["new, uncached rate"] / f["old, uncached rate"]
            by_cpu = f["new, uncached CPU rate"] / f["old, uncached CPU rate"]
            print(
                f"  [{backend}] {label}: uncached {f['new, uncached rate']:,.0f} decl/s = "
                f"{ratio:.1f}x the old provider's {f['old, uncached rate']:,.0f} "
                f"({by_cpu:.1f}x per CPU second; target >= 20x); "
                f"warm cache p99 {f['new, warm cache p99'] * 1e3:.3f} ms wall, "
                f"{f['new, warm cache p99 CPU'] * 1e3:.3f} ms CPU (target <= 1 ms); over every "
                f"declaration {f['all p99'] * 1e3:.3f} ms wall, {f['all p99 CPU'] * 1e3:.3f} ms CPU"
            )


def run(engine: sa.Engine, backend: str, args: argparse.Namespace, fill: bool) -> None:
    if fill:
        began = time.perf_counter()
        summary = demo.write_demo(engine, args.declarations, seed=args.seed)
        seconds = time.perf_counter() - began
        print(
            f"[{backend}] demo data: {summary.declarations:,} declarations, {summary.items:,} "
            f"items, {summary.not_completed:,} not completed, {summary.controls:,} controls "
            f"in {seconds:.1f} s ({summary.declarations / seconds:,.0f} declarations/s)"
        )
    if backend == "postgresql":
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    d = TABLES.declarations
    with engine.connect() as c:
        count, start, end = c.execute(
            sa.select(sa.func.count(), sa.func.min(d.c.date), sa.func.max(d.c.date))
        ).one()
    with_old = args.old if args.old is not None else count <= 200_000
    print(f"[{backend}] {count:,} declarations dated {start} .. {end}, the backtest period")
    source = native_source()
    o = TABLES.outcomes
    scan = sa.select(
        sa.func.count(), sa.func.sum(sa.case((o.c.completed, 0), else_=1)), sa.func.max(o.c.date)
    )

    def execute(query: Any) -> None:
        with engine.connect() as c:
            c.execute(query).all()

    scan_seconds = best_of(3, lambda: execute(scan))
    print(f"[{backend}] baseline: one scan of clearance_outcomes {scan_seconds * 1000:8.1f} ms")
    for name, block in BLOCKS.items():
        rows = 0
        nonzero = 0

        def streamed(block: m.History = block) -> None:
            nonlocal rows, nonzero
            rows = nonzero = 0
            with engine.connect() as c:
                for h in history_for_range(c, block, source, start, end):
                    rows += 1
                    nonzero += h.negative > 0 or h.positive > 0

        seconds = best_of(1, streamed)
        print(
            f"[{backend}] set-based history, {name}: {rows:,} goods items streamed to Python "
            f"in {seconds:6.2f} s ({rows / seconds:,.0f} items/s, {nonzero:,} with history) "
            f"= {seconds / scan_seconds:,.0f}x one scan of the outcomes"
        )

        def in_database(select: Callable[..., sa.Select[Any]], block: m.History = block) -> None:
            execute(summed(select(block, source, start, end)))

        new = best_of(2, lambda: in_database(history_select))
        line = (
            f"[{backend}] set-based history, {name}: summed in the database {new:6.2f} s "
            f"= {new / scan_seconds:,.0f}x one scan of the outcomes"
        )
        if with_old:
            before = best_of(1, lambda: in_database(old_history_select))
            line += f"; replaced range join {before:6.2f} s = {before / new:,.1f}x the new query"
        print(line, flush=True)
    profiles(engine, backend, source, start, end, with_old, execute)
    lookups(engine, backend, args)


def profiles(
    engine: sa.Engine,
    backend: str,
    source: StoreSource,
    start: dt.date,
    end: dt.date,
    with_old: bool,
    execute: Callable[[Any], None],
) -> None:
    """Every history block of the sample profiles, as a backtest of all of them needs."""
    blocks = profile_blocks()
    groups: dict[Any, list[m.History]] = {}
    for block in blocks:
        groups.setdefault(HistoryTerms.of(block).subjects, []).append(block)

    def each_block(select: Callable[..., sa.Select[Any]]) -> None:
        for block in blocks:
            execute(summed(select(block, source, start, end)))

    def each_group() -> None:
        for group in groups.values():
            execute(summed(history_select_many(group, source, start, end)))

    one_by_one = best_of(2, lambda: each_block(history_select))
    grouped = best_of(2, each_group)
    line = (
        f"[{backend}] the {len(blocks)} history blocks of profiles/, summed in the database: "
        f"one query per block {one_by_one:6.2f} s; one per subject definition "
        f"({len(groups)}, history_select_many) {grouped:6.2f} s = {one_by_one / grouped:.2f}x"
    )
    if with_old:
        before = best_of(1, lambda: each_block(old_history_select))
        line += f"; replaced range join {before:6.2f} s = {before / one_by_one:,.1f}x one per block"
    print(line, flush=True)


def lookups(engine: sa.Engine, backend: str, args: argparse.Namespace) -> None:
    block = BLOCKS["importer, 1095 d"]
    profile = m.Profile(number=None, name="bench", history=block)
    d = TABLES.declarations
    with engine.connect() as c:
        sample = c.execute(
            sa.select(d.c.importer_id, d.c.date).where(d.c.importer_id.is_not(None))
        ).all()
    rng = random.Random(args.seed)
    asks = [(row[0], row[1]) for row in rng.sample(sample, min(args.lookups, len(sample)))]
    for mode in ("uncached", "cached", "preloaded"):
        provider = SqlHistoryProvider(engine, cache=mode != "uncached")
        began = time.perf_counter()
        if mode == "preloaded":
            subjects = provider.preload(profile)
            print(
                f"[{backend}] preload of every importer's events: {subjects:,} subjects in "
                f"{time.perf_counter() - began:.2f} s"
            )
        began = time.perf_counter()
        for importer, date in asks:
            provider.history(profile, (importer,), date)
        seconds = time.perf_counter() - began
        print(
            f"[{backend}] single lookup, {mode:9}: {len(asks) / seconds:11,.0f} lookups/s "
            f"({seconds / len(asks) * 1e6:9,.1f} µs each, {provider.queries:,} queries)"
        )


if __name__ == "__main__":
    main()
