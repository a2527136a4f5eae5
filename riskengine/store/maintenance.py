"""Keeping the store fast: planner statistics after a load (``riskengine db analyze``).

A query planner chooses joins and indexes from statistics about the tables. Right after a bulk
load PostgreSQL has none (autovacuum gathers them later, on its own schedule) and plans a
backtest's history windows as if the tables were nearly empty: measured 18× slower
(docs/store.md). ``ingest`` and ``demo-data`` therefore call :func:`analyze` when they added
rows, and ``riskengine db analyze`` does it on demand.

Per backend: PostgreSQL ``ANALYZE`` of the data tables; SQLite ``ANALYZE`` with a sampling limit
(``PRAGMA analysis_limit``, so it stays fast on a large file) followed by ``PRAGMA optimize``;
DuckDB keeps its statistics current as it loads, and ``ANALYZE`` refreshes the distinct counts.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from riskengine.store.engine import database_errors
from riskengine.store.schema import build_tables

__all__ = ["DATA_TABLES", "analyze"]

#: The tables a backtest and history read, whose statistics matter.
DATA_TABLES: tuple[str, ...] = (
    "declarations",
    "items",
    "clearance_outcomes",
    "outcome_reasons",
    "control_results",
)

#: Rows SQLite samples per index when it analyses (its documented suggestion is 100 to 1000).
SQLITE_ANALYSIS_LIMIT = 1000


def _statements(connection: sa.Connection) -> list[str]:
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    tables = build_tables()
    names = ", ".join(quote(tables.metadata.tables[name].name) for name in DATA_TABLES)
    if dialect.name == "postgresql":
        return [f"ANALYZE {names}"]
    if dialect.name == "sqlite":
        return [f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}", "ANALYZE", "PRAGMA optimize"]
    if dialect.name == "duckdb":
        return ["ANALYZE"]
    return []


def analyze(engine: sa.Engine) -> float:
    """Refresh the planner statistics of the store's data tables; returns the seconds it took.

    Table names come from the schema (quoted by the dialect); no value is interpolated.
    """
    started = time.perf_counter()
    with database_errors(engine), engine.begin() as connection:
        for statement in _statements(connection):
            connection.execute(sa.text(statement))
    return time.perf_counter() - started
