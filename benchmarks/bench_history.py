"""History from the store: the set-based query for every declaration of a backtest, against a
single scan of the outcomes table measured in the same run; and the single lookup for online
scoring (uncached and cached).

    python benchmarks/bench_history.py                             # 100,000 declarations, SQLite
    python benchmarks/bench_history.py --declarations 1000000      # the 1 M figure of the docs
    python benchmarks/bench_history.py --backend postgresql --backend duckdb
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_ingest import fresh_store  # noqa: E402

from riskengine import model as m  # noqa: E402
from riskengine.store import demo  # noqa: E402
from riskengine.store.history import (  # noqa: E402
    SqlHistoryProvider,
    history_for_range,
    history_select,
)
from riskengine.store.schema import TABLES  # noqa: E402

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


def best_of(runs: int, work: object) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=100_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "duckdb"])
    parser.add_argument("--lookups", type=int, default=2_000, help="single lookups to time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backend or ["sqlite"]:
            with fresh_store(backend, folder) as engine:
                run(engine, backend, args)


def run(engine: sa.Engine, backend: str, args: argparse.Namespace) -> None:
    began = time.perf_counter()
    summary = demo.write_demo(engine, args.declarations, seed=args.seed)
    seconds = time.perf_counter() - began
    print(
        f"[{backend}] demo data: {summary.declarations:,} declarations, {summary.items:,} items, "
        f"{summary.not_completed:,} not completed, {summary.controls:,} controls "
        f"in {seconds:.1f} s ({summary.declarations / seconds:,.0f} declarations/s)"
    )
    if backend == "postgresql":
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    o = TABLES.outcomes
    scan = sa.select(
        sa.func.count(), sa.func.sum(sa.case((o.c.completed, 0), else_=1)), sa.func.max(o.c.date)
    )

    def scan_outcomes() -> None:
        with engine.connect() as c:
            c.execute(scan).one()

    scan_seconds = best_of(3, scan_outcomes)
    print(f"[{backend}] baseline: one scan of clearance_outcomes {scan_seconds * 1000:8.1f} ms")
    for name, block in BLOCKS.items():
        rows = 0
        nonzero = 0

        def set_based(block: m.History = block) -> None:
            nonlocal rows, nonzero
            rows = nonzero = 0
            with engine.connect() as c:
                for h in history_for_range(c, block):
                    rows += 1
                    nonzero += h.negative > 0 or h.positive > 0

        seconds = best_of(1, set_based)
        print(
            f"[{backend}] set-based history, {name}: {rows:,} goods items streamed to Python "
            f"in {seconds:6.2f} s ({rows / seconds:,.0f} items/s, {nonzero:,} with history) "
            f"= {seconds / scan_seconds:,.0f}x one scan of the outcomes"
        )
        inner = history_select(block).subquery()
        totals = sa.select(
            sa.func.count(),
            sa.func.sum(inner.c.negative_units),
            sa.func.sum(inner.c.clean_controls),
        )

        def in_database(totals: sa.Select[tuple[int, int, int]] = totals) -> None:
            with engine.connect() as c:
                c.execute(totals).one()

        seconds = best_of(1, in_database)
        print(
            f"[{backend}] set-based history, {name}: the same query summed in the database "
            f"{seconds:6.2f} s = {seconds / scan_seconds:,.0f}x one scan of the outcomes"
        )
    lookups(engine, backend, args)


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
