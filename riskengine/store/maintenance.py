"""Keeping the store fast: planner statistics after a load (``riskengine db analyze``).

A query planner chooses joins and indexes from statistics about the tables. Right after a bulk
load PostgreSQL has none (autovacuum gathers them later, on its own schedule) and plans a
backtest's history windows as if the tables were nearly empty: measured 18× slower
(docs/store.md). ``ingest`` and ``demo-data`` therefore call :func:`analyze` when they added
rows, and ``riskengine db analyze`` does it on demand.

Per backend: PostgreSQL ``ANALYZE`` of the data tables; DuckDB keeps its statistics current as
it loads, and ``ANALYZE`` refreshes the distinct counts; SQLite **nothing**: statistics do not
make its backtests faster. With statistics a SQLite store has anyway (``sqlite_stat1``, from
``ANALYZE`` or ``PRAGMA optimize`` by another tool) the sample backtest ran 30-40× slower;
:func:`sqlite_has_statistics` now tells the backtest to add its planner hint then
(docs/store.md#planner-statistics).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from riskengine.store.engine import database_errors
from riskengine.store.schema import build_tables

__all__ = ["DATA_TABLES", "analyze", "gathers_statistics", "sqlite_has_statistics"]

#: The tables a backtest and history read, whose statistics matter.
DATA_TABLES: tuple[str, ...] = (
    "declarations",
    "items",
    "clearance_outcomes",
    "outcome_reasons",
    "control_results",
)


def _statements(connection: sa.Connection) -> list[str]:
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    tables = build_tables()
    names = ", ".join(quote(tables.metadata.tables[name].name) for name in DATA_TABLES)
    if dialect.name == "postgresql":
        return [f"ANALYZE {names}"]
    if dialect.name == "duckdb":
        return ["ANALYZE"]
    return []


def gathers_statistics(engine: sa.Engine) -> bool:
    """Whether :func:`analyze` does anything on ``engine``'s backend (not on SQLite)."""
    return engine.dialect.name in ("postgresql", "duckdb")


def sqlite_has_statistics(connection: sa.Connection) -> bool:
    """Whether ``connection`` is on a SQLite database whose planner has statistics (rows in
    ``sqlite_stat1``, from ``ANALYZE`` or ``PRAGMA optimize`` by any tool). The backtest then
    adds a planner hint to its history queries (``period_hint`` of
    :func:`riskengine.store.history.history_select_many`): without it the sample backtest took
    30-40x longer after ``ANALYZE`` (docs/performance.md, "SQLite after ANALYZE")."""
    if connection.dialect.name != "sqlite":
        return False
    master = sa.table("sqlite_master", sa.column("type"), sa.column("name"))
    exists = connection.execute(
        sa.select(master.c.name).where(master.c.type == "table", master.c.name == "sqlite_stat1")
    ).first()
    if exists is None:
        return False
    stat1 = sa.table("sqlite_stat1", sa.column("tbl"))
    return connection.execute(sa.select(stat1.c.tbl).limit(1)).first() is not None


def analyze(engine: sa.Engine) -> float:
    """Refresh the planner statistics of the store's data tables; returns the seconds it took.

    Table names come from the schema (quoted by the dialect); no value is interpolated.
    """
    started = time.perf_counter()
    with database_errors(engine), engine.begin() as connection:
        for statement in _statements(connection):
            connection.execute(sa.text(statement))
    return time.perf_counter() - started
