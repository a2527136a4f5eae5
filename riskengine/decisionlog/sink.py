"""Writing batches of decision records into the store's ``decision_log``, idempotently.

SQLite (and DuckDB): one ``INSERT … ON CONFLICT DO NOTHING`` executed for the whole batch
(``executemany``). PostgreSQL: the batch is streamed with ``COPY`` (psycopg's ``cursor.copy``)
into a temporary table, then ``INSERT INTO decision_log SELECT … ON CONFLICT DO NOTHING`` moves
it over; COPY itself cannot skip duplicates. Either way one batch is one transaction: it is all
in the store or none of it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from riskengine.decisionlog.record import COLUMNS, DecisionRecord, Row, typed_row
from riskengine.store.engine import StoreError, backend_name, connect
from riskengine.store.schema import TABLES

__all__ = ["StoreSink"]

_INCOMING = "decision_log_incoming"
#: Rows per INSERT statement on DuckDB (12 bound parameters each).
_DUCKDB_CHUNK = 500


def _incoming_table() -> sa.Table:
    """The temporary table COPY fills on PostgreSQL (same columns, no key)."""
    md = sa.MetaData()
    return sa.Table(
        _INCOMING,
        md,
        *[sa.Column(c.name, c.type, nullable=True) for c in TABLES.decision_log.columns],
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


class _EncodedJSON(sa.types.TypeDecorator[str]):
    """A JSON column whose values are JSON text already (bound as they are)."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


def _writing_view(table: sa.Table) -> sa.Table:
    """``table`` with its JSON columns as text: rows carry JSON already encoded."""
    md = sa.MetaData()
    return sa.Table(
        table.name,
        md,
        *[
            sa.Column(c.name, _EncodedJSON() if isinstance(c.type, sa.JSON) else c.type)
            for c in table.columns
        ],
    )


class StoreSink:
    """Writes batches of rows into ``decision_log`` at ``url`` (or through ``engine``).

    :meth:`write` returns how many rows were new (the others were already there). Any
    failure (unreachable server, missing table, a refused write) raises; the caller spools.
    ``copy=False`` writes with executemany on PostgreSQL too (for comparison; slower).
    """

    def __init__(
        self, url: str | None = None, *, engine: sa.Engine | None = None, copy: bool = True
    ) -> None:
        if engine is None:
            backend = backend_name(url) if url is not None else None
            options: dict[str, Any] = {}
            if backend == "postgresql":  # a server that does not answer: fail, then spool
                options["connect_args"] = {"connect_timeout": 5}
            engine = connect(url, **options)
            self._own = True
        else:
            self._own = False
        self.engine = engine
        self.backend = engine.dialect.name
        if self.backend not in ("sqlite", "postgresql", "duckdb"):
            raise StoreError(f"the decision log cannot write to a {self.backend} store")
        self.copy = copy and self.backend == "postgresql"
        self.table = TABLES.decision_log
        self._incoming = _incoming_table()
        self._create_incoming: str | None = None
        view = _writing_view(self.table)
        if self.backend == "sqlite":
            # compiled once from Core, executed with bound parameters as one executemany
            insert = sqlite.insert(view).values({n: sa.bindparam(n) for n in COLUMNS})
            compiled = insert.on_conflict_do_nothing().compile(dialect=engine.dialect)
            assert compiled.positiontup == list(COLUMNS)
            self._sql = str(compiled)
        elif self.copy:
            self._insert: Any = (
                postgresql.insert(self.table)
                .from_select(list(COLUMNS), sa.select(*[self._incoming.c[n] for n in COLUMNS]))
                .on_conflict_do_nothing()
                .execution_options(preserve_rowcount=True)
            )
        else:  # PostgreSQL without COPY; DuckDB understands PostgreSQL's ON CONFLICT
            self._insert = (
                postgresql.insert(view)
                .on_conflict_do_nothing()
                .execution_options(preserve_rowcount=True)
            )

    def close(self) -> None:
        if self._own:
            self.engine.dispose()

    def reset(self) -> None:
        """Drop pooled connections (after a failure, so the next batch reconnects)."""
        self.engine.dispose()

    def write(self, rows: Sequence[Row]) -> int:
        """Write ``rows`` in one transaction; the number that were not there yet."""
        if not rows:
            return 0
        with self.engine.begin() as connection:
            if self.copy:
                try:
                    return self._copy(connection, rows)
                except BaseException:  # the temporary table may have gone with the transaction
                    connection.info.pop(_INCOMING, None)
                    raise
            if self.backend == "sqlite":
                count = connection.exec_driver_sql(self._sql, list(rows)).rowcount
            elif self.backend == "duckdb":
                # one multi-row VALUES statement per chunk: DuckDB's executemany runs row by
                # row (68 records/s measured, against 700/s this way)
                count = 0
                for k in range(0, len(rows), _DUCKDB_CHUNK):
                    values = [dict(zip(COLUMNS, typed_row(r), strict=True))
                              for r in rows[k : k + _DUCKDB_CHUNK]]  # fmt: skip
                    count += connection.execute(self._insert.values(values)).rowcount
            else:
                count = connection.execute(
                    self._insert, [dict(zip(COLUMNS, typed_row(r), strict=True)) for r in rows]
                ).rowcount
        return len(rows) if count is None or count < 0 else count

    def _copy(self, connection: sa.Connection, rows: Sequence[Row]) -> int:
        # the temporary table lives as long as the session: created once per connection (a
        # round trip less per batch, and one GIL hand-over less for the scoring threads)
        if not connection.info.get(_INCOMING):
            if self._create_incoming is None:
                ddl = sa.schema.CreateTable(self._incoming, if_not_exists=True)
                self._create_incoming = str(ddl.compile(dialect=connection.dialect))
            connection.exec_driver_sql(self._create_incoming)
            connection.info[_INCOMING] = True
        raw = connection.connection.driver_connection
        assert raw is not None
        names = ", ".join(COLUMNS)  # fixed identifiers from the schema
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {_INCOMING} ({names}) FROM STDIN") as copy,
        ):
            write = copy.write_row  # C formatting: one COPY text built in Python measured no faster
            for row in rows:
                write(row)
        result = connection.execute(self._insert)
        return result.rowcount

    def read(self, connection: sa.Connection | None = None) -> list[DecisionRecord]:
        """Every record in ``decision_log`` (for tests and small audits), by declaration id."""
        query = sa.select(*[self.table.c[n] for n in COLUMNS]).order_by(
            self.table.c.declaration_id, self.table.c.bundle_revision
        )
        if connection is not None:
            return [DecisionRecord.from_row(tuple(r)) for r in connection.execute(query)]
        with self.engine.connect() as own:
            return [DecisionRecord.from_row(tuple(r)) for r in own.execute(query)]
