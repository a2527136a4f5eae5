"""Benchmark data for the backtest benchmarks: demo declarations, replicated inside DuckDB.

``riskengine demo-data`` generates about 4,000-6,000 declarations/s, so 10 M declarations would
take most of an hour. Instead a *base* of demo declarations (``riskengine.demo``, with
their outcomes, reasons and controls) is generated once into a DuckDB file, and the big store is
built from ``copies`` copies of it with ``INSERT ... SELECT``:

* copy ``r`` shifts every key (``pk``, ``decl_pk``, control ``pk``) by ``r × (max pk + 1)`` and
  suffixes the declaration id (``…-r``), so every declaration is distinct;
* the dates are kept (every copy covers the same two years), and copy ``r`` gets its own trader
  population: ``declarant_id``, ``importer_id`` and ``broker_id`` are suffixed with ``r``, so a
  trader's history (outcomes and controls, ``negative_history`` / ``positive_history``) is as
  dense as in the base, not ``copies`` times denser;
* goods, values, offices, regimes, outcomes, reasons and controls are the base's.

Both files are cached (``benchmarks/.data/``, ignored by git) and rebuilt with ``rebuild=True``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskengine import demo  # noqa: E402
from riskengine.store import migrate  # noqa: E402
from riskengine.store.engine import connect  # noqa: E402

DATA = Path(os.environ.get("RISKENGINE_BENCH_DATA", ROOT / "benchmarks" / ".data"))
#: Header columns that identify traders: suffixed per copy.
TRADER_COLUMNS = ("declarant_id", "importer_id", "broker_id")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_store(
    declarations: int, seed: int = 1, rebuild: bool = False, backend: str = "duckdb"
) -> Path:
    """A DuckDB (or SQLite) store file with ``declarations`` demo declarations (2024-2025),
    generated once."""
    suffix = {"duckdb": "duckdb", "sqlite": "db"}[backend]
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"demo-{declarations}-s{seed}.{suffix}"
    if path.exists() and not rebuild:
        return path
    path.unlink(missing_ok=True)
    tmp = path.with_suffix(f".tmp.{suffix}")
    tmp.unlink(missing_ok=True)
    log(f"generating {declarations:,} demo declarations into {path} (about 4,000/s)...")
    started = time.perf_counter()
    url = f"{backend}:///{tmp}"
    migrate.init(url)
    engine = connect(url)
    try:
        summary = demo.write_demo(engine, declarations, seed, batch_size=20_000)
    finally:
        engine.dispose()
    tmp.rename(path)
    log(f"  {summary.declarations:,} declarations, {summary.items:,} items in "
        f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return path


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_name = ? "
        "and table_catalog = 'base' order by ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def replicated_store(
    base_declarations: int, copies: int, seed: int = 1, rebuild: bool = False
) -> Path:
    """A DuckDB store of ``copies`` copies of the base store (see the module docstring)."""
    base = base_store(base_declarations, seed, rebuild=False)
    if copies == 1:
        return base
    path = DATA / f"demo-{base_declarations}-s{seed}-x{copies}.duckdb"
    if path.exists() and not rebuild:
        return path
    path.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    log(f"building {copies} copies of {base.name} into {path}...")
    started = time.perf_counter()
    migrate.init(f"duckdb:///{tmp}")  # the schema, its keys and indexes
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"attach '{base}' as base (read_only)")
        [(step,)] = con.execute("select max(pk) + 1 from base.declarations").fetchall()
        for table, keys in (
            ("declarations", ("pk",)),
            ("items", ("decl_pk",)),
            ("clearance_outcomes", ("decl_pk",)),
            ("outcome_reasons", ("decl_pk",)),
            ("control_results", ("pk", "decl_pk")),
        ):
            cols = _columns(con, table)
            exprs = []
            for col in cols:
                if col in keys:
                    exprs.append(f"{col} + r * {step}")
                elif table == "declarations" and col in ("id", "number", *TRADER_COLUMNS):
                    exprs.append(f"case when r = 0 then {col} else {col} || '-' || r end")
                else:
                    exprs.append(col)
            names = ", ".join(cols)
            con.execute(
                f"insert into main.{table} ({names}) select {', '.join(exprs)} "
                f"from base.{table}, range({copies}) as copies(r) order by r, {keys[0]}"
            )
            log(f"  {table}: {time.perf_counter() - started:.0f} s")
        con.execute("checkpoint")
    finally:
        con.close()
    tmp.rename(path)
    log(f"  done in {time.perf_counter() - started:.0f} s ({path.stat().st_size / 2**30:.1f} GiB)")
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    print(replicated_store(args.base, args.copies, args.seed, args.rebuild))
