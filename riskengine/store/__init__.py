"""The SQL store: declarations, outcomes and controls over years, on SQLite, PostgreSQL, DuckDB.

The store proper: engines, schema, migrations, the writer and the history SQL. Getting data in
is :mod:`riskengine.ingest` (exports) and :mod:`riskengine.demo` (generated); reading a user's
own tables instead is :mod:`riskengine.byo`.
"""

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
