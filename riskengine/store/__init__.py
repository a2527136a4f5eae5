"""The SQL store: declarations, outcomes and controls over years, on SQLite, PostgreSQL, DuckDB."""

from riskengine.store.engine import DEFAULT_URL, StoreError, connect, resolve_url
from riskengine.store.schema import TABLES, StoreTables, build_tables

__all__ = [
    "DEFAULT_URL",
    "TABLES",
    "StoreError",
    "StoreTables",
    "build_tables",
    "connect",
    "resolve_url",
]
