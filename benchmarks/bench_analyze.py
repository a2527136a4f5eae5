"""A backtest right after loading demo data, without and with planner statistics (issue 11/6).

``--backend sqlite``: one SQLite store of demo data and a copy of it after ``ANALYZE``
(``sqlite_stat1``, as any tool or ``PRAGMA optimize`` may leave it); the sample profiles are
backtested on both and the ratio after/before printed. Before the planner hint of the history
queries (riskengine.store.history.timeline, ``period_hint``) the analysed copy took 30-40x
longer.

``--backend postgresql`` (the default):

Two fresh schemas get the same demo data; the first is loaded through ``write_demo`` only (no
statistics: what ``demo-data`` did before), the second through ``riskengine demo-data`` (which
now refreshes the planner statistics). The sample profiles are then backtested over the demo
period on each, at once, and the seconds printed. Autovacuum is switched off on the first
schema's tables so that it cannot gather the statistics in the middle of the measurement.

    python benchmarks/bench_analyze.py [--declarations 10000] [--url postgresql://...]
    python benchmarks/bench_analyze.py --backend sqlite [--declarations 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskengine.demo import DEFAULT_END, DEFAULT_START, write_demo  # noqa: E402
from riskengine.store import migrate  # noqa: E402
from riskengine.store.engine import connect, resolve_url  # noqa: E402
from riskengine.store.maintenance import DATA_TABLES  # noqa: E402


def _schema_url(base: str, schema: str) -> str:
    url = sa.make_url(resolve_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _backtest(url: str, extra: list[str], repeat: int) -> float:
    """The fastest of ``repeat`` runs (the machine may be busy with other work)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "riskengine", "backtest", str(ROOT / "profiles"), "--db", url,
             "--from", str(DEFAULT_START), "--to", str(DEFAULT_END), "--format", "json",
             "--no-record", *extra],
            check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        best = min(best, time.perf_counter() - started)
    return best


def _sqlite(args: argparse.Namespace, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        plain, analyzed = Path(folder) / "plain.db", Path(folder) / "analyzed.db"
        subprocess.run(
            [sys.executable, "-m", "riskengine", "demo-data", "-n", str(args.declarations),
             "--seed", str(args.seed), "--db", f"sqlite:///{plain}", "-q"],
            check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        shutil.copy(plain, analyzed)
        with sqlite3.connect(analyzed) as raw:
            raw.execute("ANALYZE")
            stats = raw.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0]
        before = _backtest(f"sqlite:///{plain}", extra, args.repeat)
        after = _backtest(f"sqlite:///{analyzed}", extra, args.repeat)
    print(
        f"{args.declarations:,} demo declarations, sample profiles, "
        f"{DEFAULT_START} .. {DEFAULT_END}{' by ' + args.by if args.by else ''} on SQLite: "
        f"backtest (best of {args.repeat}) {before:.2f} s without statistics, {after:.2f} s "
        f"after ANALYZE ({stats} rows in sqlite_stat1): after/before {after / before:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--declarations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--by", default=None, help="backtest --by (e.g. office,regime)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per store; the fastest")
    args = parser.parse_args()
    if args.backend == "sqlite":
        _sqlite(args, ["--by", args.by] if args.by else [])
        return
    admin = sa.create_engine(resolve_url(args.url))
    schemas = [f"bench_{uuid.uuid4().hex[:8]}_{kind}" for kind in ("plain", "analyzed")]
    try:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        plain, analyzed = (_schema_url(args.url, s) for s in schemas)

        migrate.init(plain)
        with admin.begin() as connection:
            for table in DATA_TABLES:
                connection.execute(
                    sa.text(f'ALTER TABLE "{schemas[0]}"."{table}" SET (autovacuum_enabled = off)')
                )
        engine = connect(plain)
        write_demo(engine, args.declarations, args.seed)
        engine.dispose()
        extra = ["--by", args.by] if args.by else []
        without = _backtest(plain, extra, args.repeat)

        subprocess.run(
            [sys.executable, "-m", "riskengine", "demo-data", "-n", str(args.declarations),
             "--seed", str(args.seed), "--db", analyzed, "-q"],
            check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        with_analyze = _backtest(analyzed, extra, args.repeat)
        print(
            f"{args.declarations:,} demo declarations, sample profiles, "
            f"{DEFAULT_START} .. {DEFAULT_END}{' by ' + args.by if args.by else ''} on "
            f"PostgreSQL: backtest right after loading (best of {args.repeat}) "
            f"{without:.2f} s without ANALYZE, {with_analyze:.2f} s with "
            f"({without / with_analyze:.1f}x)"
        )
    finally:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
