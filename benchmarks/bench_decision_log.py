"""Decision-log benchmark: scoring throughput with the log off and on (SQLite, PostgreSQL).

    python benchmarks/bench_decision_log.py                      # 20,000 demo declarations
    python benchmarks/bench_decision_log.py --declarations 5000 --rounds 2
    python benchmarks/bench_decision_log.py --pg URL             # default: the local test server

The 9 sample profiles score pre-normalised demo declarations (``Engine.score(Declaration)``) on
one thread: "off" is the scoring loop alone; "on" adds ``DecisionLog.record`` for every result
and ends when ``flush`` says every record is acknowledged (written to the store), so the time
includes the writer thread's work competing for the interpreter. Shown as wall-clock
throughput and as this process's CPU time per declaration (both threads; the database server's
own work is not in it), which moves far less than wall-clock time on a shared machine. The
runners take turns within each round and the best time of each is kept; "pg, batch 5000" is
the PostgreSQL log with ``batch_size=5000`` (fewer transactions). Also shown:
the writer's bare store throughput per backend (records per second, one batch of 1,000 per
transaction: executemany on SQLite, COPY into a temporary table then INSERT … ON CONFLICT DO
NOTHING on PostgreSQL, and PostgreSQL's executemany for comparison), and the cost of a random
selection (an HMAC per declaration) without the log. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskengine.decisionlog import DecisionLog, StoreSink
from riskengine.decisionlog.record import Row, build_row, entry_from_result
from riskengine.demo.generate import generate
from riskengine.evaluator import Engine, RandomSelection
from riskengine.store import migrate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_store(base: str) -> tuple[str, Callable[[], None]] | None:
    """A fresh schema on the PostgreSQL server with the store's tables, and its dropper."""
    from riskengine.store.engine import resolve_url

    admin = sa.create_engine(resolve_url(base))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL skipped: {str(exc.orig).splitlines()[0]}")
        return None
    url = sa.make_url(resolve_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    text = url.render_as_string(hide_password=False)
    migrate.init(text)

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return text, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--declarations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("RISKENGINE_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, {dt.date.today()}, "
        f"load average {load}"
    )
    engine = Engine.load(ROOT / "profiles")
    decls = [r.declaration for r in generate(args.declarations, seed=5)]
    print(f"{len(engine.profiles)} sample profiles, {len(decls):,} demo declarations")

    work = tempfile.mkdtemp(prefix="bench-decision-log-")
    stores: dict[str, str] = {"sqlite": f"sqlite:///{os.path.join(work, 'store.db')}"}
    migrate.init(stores["sqlite"])
    cleanup: list[Callable[[], None]] = []
    if not args.no_pg:
        found = _pg_store(args.pg)
        if found is not None:
            stores["postgresql"], drop = found
            cleanup.append(drop)
    try:
        _run(engine, decls, stores, work, args.rounds)
    finally:
        for drop in cleanup:
            drop()


def _run(engine: Engine, decls: list, stores: dict[str, str], work: str, rounds: int) -> None:  # type: ignore[type-arg]
    score = engine.score
    counter = iter(range(1_000_000))

    def off() -> None:
        for d in decls:
            score(d)

    def on(url: str, backend: str, batch_size: int = 1000) -> Callable[[], None]:
        def run() -> None:
            revision = f"bench-{next(counter)}"
            with DecisionLog(url, spool=os.path.join(work, f"{backend}.spool"),
                             revision=revision, batch_size=batch_size) as log:  # fmt: skip
                record = log.record
                for d in decls:
                    record(score(d), d)
                if not log.flush(600):
                    raise SystemExit("the decision log did not flush within 600 s")
                stats = log.stats()
            if stats.written != len(decls) or stats.spool_appends:
                raise SystemExit(f"{backend}: unexpected log counters {stats}")

        return run

    drawn = Engine(engine.profiles, random=RandomSelection(b"bench-key-0123456789", rate=0.01))

    def random_on() -> None:
        for d in decls:
            drawn.score(d)

    runners: dict[str, Callable[[], None]] = {"log off": off, "random selection, 1 %": random_on}
    for backend, url in stores.items():
        runners[f"log on, {backend}"] = on(url, backend)
    if "postgresql" in stores:  # fewer, larger transactions: fewer GIL hand-overs
        runners["log on, pg, batch 5000"] = on(stores["postgresql"], "postgresql", 5000)
    best = dict.fromkeys(runners, float("inf"))
    cpu = dict.fromkeys(runners, float("inf"))
    for _ in range(rounds):
        for name, fn in runners.items():
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name] = min(cpu[name], time.process_time() - started_cpu)
            best[name] = min(best[name], time.perf_counter() - started)
    n = len(decls)
    base, base_cpu = best["log off"], cpu["log off"]
    print(f"(load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(f"\nscoring throughput, best of {rounds} rounds (on: until every record is written)")
    print(f"{'':24} {'decl/s':>10} {'vs off':>8} {'CPU us/decl':>12} {'vs off':>8}")
    for name, seconds in best.items():
        print(
            f"{name:24} {n / seconds:>10,.0f} {base / seconds:>7.2f}x "
            f"{cpu[name] / n * 1e6:>12.1f} {base_cpu / cpu[name]:>7.2f}x"
        )

    print("\nthe writer alone: records per second into decision_log (batches of 1,000)")
    results = [score(d) for d in decls]
    records: list[Row] = [
        build_row(entry_from_result(r, d, "sink", time.time_ns()))
        for r, d in zip(results, decls, strict=True)
    ]
    for backend, url in stores.items():
        modes = ["copy", "executemany"] if backend == "postgresql" else ["executemany"]
        for mode in modes:
            sink = StoreSink(url, copy=mode == "copy")
            with sink.engine.begin() as connection:
                connection.execute(sa.delete(sink.table))
            started = time.perf_counter()
            for k in range(0, len(records), 1000):
                sink.write(records[k : k + 1000])
            seconds = time.perf_counter() - started
            sink.close()
            print(f"{backend:12} {mode:12} {len(records) / seconds:>10,.0f} records/s")


if __name__ == "__main__":
    main()
