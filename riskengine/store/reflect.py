"""What tables and columns a database has: SQLAlchemy's inspector, or DuckDB's catalogue views.

duckdb-engine's inspector cannot list columns or indexes under SQLAlchemy 2.1 (it runs
PostgreSQL catalogue queries DuckDB lacks), so on DuckDB these functions read
``information_schema.columns`` and ``duckdb_indexes()`` instead.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import sqlalchemy as sa

__all__ = ["ColumnInfo", "columns", "has_table", "index_names", "reflected_table"]


@attrs.frozen
class ColumnInfo:
    """One column of an existing table."""

    name: str
    type: sa.types.TypeEngine[Any]
    nullable: bool


_DUCKDB_TYPES: list[tuple[re.Pattern[str], type[sa.types.TypeEngine[Any]]]] = [
    (re.compile(r"(BIG|HUGE|U?BIG)INT|INT8|LONG", re.I), sa.BigInteger),
    (re.compile(r"(U?(TINY|SMALL)?INT(EGER)?|INT[124])\Z", re.I), sa.Integer),
    (re.compile(r"DOUBLE|FLOAT|REAL", re.I), sa.Double),
    (re.compile(r"DECIMAL|NUMERIC", re.I), sa.Numeric),
    (re.compile(r"BOOL", re.I), sa.Boolean),
    (re.compile(r"TIMESTAMP|DATETIME", re.I), sa.DateTime),
    (re.compile(r"DATE\Z", re.I), sa.Date),
    (re.compile(r"JSON", re.I), sa.JSON),
]


def _duckdb_type(name: str) -> sa.types.TypeEngine[Any]:
    for pattern, kind in _DUCKDB_TYPES:
        if pattern.match(name):
            return kind()
    return sa.Text()


def _duckdb_schema(connection: sa.Connection, schema: str | None) -> str:
    if schema is not None:
        return schema
    return str(connection.execute(sa.text("SELECT current_schema()")).scalar_one())


def columns(
    connection: sa.Connection, table: str, schema: str | None = None
) -> dict[str, ColumnInfo]:
    """The columns of ``schema.table`` by name, in table order; empty when there is no table."""
    if connection.dialect.name == "duckdb":
        rows = connection.execute(
            sa.text(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = :schema AND table_name = :table"
                " AND table_catalog = current_database()"
                " ORDER BY ordinal_position"
            ),
            {"schema": _duckdb_schema(connection, schema), "table": table},
        ).all()
        return {
            name: ColumnInfo(name, _duckdb_type(kind), nullable == "YES")
            for name, kind, nullable in rows
        }
    inspector = sa.inspect(connection)
    if not inspector.has_table(table, schema=schema):
        return {}
    return {
        c["name"]: ColumnInfo(c["name"], c["type"], bool(c.get("nullable", True)))
        for c in inspector.get_columns(table, schema=schema)
    }


def has_table(connection: sa.Connection, table: str, schema: str | None = None) -> bool:
    """Whether ``schema.table`` exists (a view counts)."""
    if connection.dialect.name == "duckdb":
        return bool(columns(connection, table, schema))
    inspector = sa.inspect(connection)
    if inspector.has_table(table, schema=schema):
        return True
    return table in inspector.get_view_names(schema=schema)


def index_names(connection: sa.Connection, table: str, schema: str | None = None) -> set[str]:
    """The names of the indexes on ``schema.table``."""
    if connection.dialect.name == "duckdb":
        rows = connection.execute(
            sa.text(
                "SELECT index_name FROM duckdb_indexes()"
                " WHERE schema_name = :schema AND table_name = :table"
                " AND database_name = current_database()"
            ),
            {"schema": _duckdb_schema(connection, schema), "table": table},
        ).all()
        return {row[0] for row in rows}
    return {
        ix["name"] for ix in sa.inspect(connection).get_indexes(table, schema=schema) if ix["name"]
    }


def reflected_table(
    connection: sa.Connection, table: str, schema: str | None = None
) -> sa.Table | None:
    """A ``Table`` with the columns the database reports, or ``None`` when there is no table."""
    found = columns(connection, table, schema)
    if not found:
        return None
    return sa.Table(
        table,
        sa.MetaData(),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in found.values()),
        schema=schema,
    )
