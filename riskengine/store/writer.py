"""Writing to the store: declarations with items, clearance outcomes and control results.

Writers run inside the caller's transaction, so a batch is stored whole or not at all. Keys are
allocated as ``max(pk) + 1`` in that transaction (one writer at a time per store; a concurrent
writer makes the batch fail on the primary key and roll back, never mix). Declarations are keyed
by their source id (``declaration.id``): writing an id that is already stored skips it, so
re-ingesting a file adds nothing twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.declaration import Declaration
from riskengine.store.engine import StoreError
from riskengine.store.schema import TABLES, StoreTables

__all__ = [
    "ControlRecord",
    "OutcomeRecord",
    "WriteResult",
    "allocate_keys",
    "declaration_keys",
    "insert_rows",
    "write_control",
    "write_controls",
    "write_declaration_values",
    "write_declarations",
    "write_outcome",
    "write_outcomes",
]

#: Ids looked up per query (bound parameters; SQLite allows 32,766 per statement).
_LOOKUP_CHUNK = 2000


@attrs.frozen
class OutcomeRecord:
    """A clearance outcome: completed, or not completed with appendix-3 reason codes."""

    declaration_id: str
    completed: bool
    date: dt.date
    reasons: tuple[str, ...] = ()
    #: When the declaration was lodged and released (table release_times, revision r0008).
    lodged_at: dt.datetime | None = None
    released_at: dt.datetime | None = None


@attrs.frozen
class ControlRecord:
    """A control carried out on a declaration."""

    declaration_id: str
    procedure: str
    date: dt.date
    violation_found: bool
    profile_key: str | None = None
    random_control: bool = False
    revenue: Decimal | None = None


@attrs.frozen
class WriteResult:
    """What a write did: records added, and the ids skipped (already stored) or unknown."""

    added: int = 0
    skipped: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def allocate_keys(connection: sa.Connection, table: sa.Table, count: int) -> int:
    """The first of ``count`` new keys of ``table`` (``max(pk) + 1``)."""
    column = table.c.pk
    top = connection.execute(sa.select(sa.func.max(column))).scalar()
    return int(top or 0) + 1


def declaration_keys(
    connection: sa.Connection, ids: Iterable[str], tables: StoreTables = TABLES
) -> dict[str, int]:
    """The keys (``pk``) of the stored declarations among ``ids``."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, int] = {}
    dialect = connection.dialect.name
    query: sa.Select[Any]
    encode: Callable[[list[str]], Any]
    if dialect == "sqlite":  # the ids as one JSON array: one parameter
        import json

        query, chunk, encode = (
            _keys_query_json(tables.declarations),
            _ONE_PARAMETER_CHUNK,
            json.dumps,
        )
    elif dialect == "postgresql":  # one text[] parameter, joined by the index
        query, chunk, encode = _keys_query_array(tables.declarations), _ONE_PARAMETER_CHUNK, list
    else:
        query, chunk, encode = _keys_query(tables.declarations), _LOOKUP_CHUNK, list
    for start in range(0, len(wanted), chunk):
        ids_param = encode(wanted[start : start + chunk])
        found.update((i, pk) for i, pk in connection.execute(query, {"ids": ids_param}))
    return found


#: Ids looked up per query where they go as one parameter (SQLite: a JSON array; PostgreSQL:
#: a text[] array).
_ONE_PARAMETER_CHUNK = 50_000


@functools.lru_cache(maxsize=16)
def _keys_query(declarations: sa.Table) -> sa.Select[Any]:
    """``id, pk`` of the declarations whose id is in the list ``ids`` (one expanding
    parameter: the statement is compiled once, not once per batch)."""
    d = declarations
    return sa.select(d.c.id, d.c.pk).where(d.c.id.in_(sa.bindparam("ids", expanding=True)))


@functools.lru_cache(maxsize=16)
def _keys_query_json(declarations: sa.Table) -> sa.Select[Any]:
    """SQLite: ``id, pk`` of the declarations whose id is in ``ids``, a JSON array of text
    (``json_each``), so that no statement has thousands of parameters to render."""
    d = declarations
    each = sa.func.json_each(sa.bindparam("ids", type_=sa.Text)).table_valued("value")
    return sa.select(d.c.id, d.c.pk).where(d.c.id.in_(sa.select(each.c.value)))


@functools.lru_cache(maxsize=16)
def _keys_query_array(declarations: sa.Table) -> sa.Select[Any]:
    """PostgreSQL: ``id, pk`` of the declarations whose id is in ``ids``, one ``text[]``
    parameter unnested and joined with the index on ``id``. (``id IN ($1, ..., $20000)`` made
    the planner scan the table and test every row against the list: minutes per batch once the
    table held a few hundred thousand declarations.)"""
    from sqlalchemy.dialects import postgresql

    d = declarations
    wanted = (
        sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text)))
        .table_valued("id")
        .render_derived(name="wanted")
    )
    return sa.select(d.c.id, d.c.pk).join(wanted, d.c.id == wanted.c.id)


def _sqlite_value(kind: sa.types.TypeEngine[Any]) -> Any:
    """How a Python value becomes a SQLite value for a column of type ``kind`` (a date may
    come as ISO text already)."""
    if isinstance(kind, sa.DateTime):
        return lambda v: v if v is None or type(v) is str else v.isoformat(" ")
    if isinstance(kind, sa.Date):
        return lambda v: v if v is None or type(v) is str else v.isoformat()
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return lambda v: None if v is None else float(v)
    if isinstance(kind, sa.JSON):
        import json

        return lambda v: None if v is None else json.dumps(v)
    return None


#: psycopg's binary COPY type of the column types it is used for (others use text COPY).
_PG_BINARY: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Double, "float8"),
    (sa.Float, "float8"),
    (sa.Boolean, "bool"),
    (sa.DateTime, "timestamp"),
    (sa.Date, "date"),
    (sa.Text, "text"),
    (sa.String, "text"),
)


def _pg_binary_types(table: sa.Table, columns: Sequence[str]) -> list[str] | None:
    found = []
    for name in columns:
        kind = table.c[name].type
        for base, pg in _PG_BINARY:
            if isinstance(kind, base):
                found.append(pg)
                break
        else:
            return None
    return found


_ISO_DATES: dict[str, dt.date] = {}


def _pg_date(value: Any) -> Any:
    """A date for binary COPY from a date or ISO text (cached: dates repeat in a batch)."""
    if type(value) is not str:
        return value
    found = _ISO_DATES.get(value)
    if found is None:
        found = dt.date.fromisoformat(value)
        if len(_ISO_DATES) > 100_000:
            _ISO_DATES.clear()
        _ISO_DATES[value] = found
    return found


def insert_rows(
    connection: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    checked: bool = False,
) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) in bulk, in the connection's
    transaction, with each backend's fastest bulk path:

    * SQLite: the driver's ``executemany`` (dates as ISO text, as SQLAlchemy stores them);
    * PostgreSQL (psycopg 3): ``COPY ... FROM STDIN`` (binary with ``checked``);
    * DuckDB: ``COPY ... FROM`` a temporary CSV file (its ``executemany`` runs row by row);
    * any other dialect: SQLAlchemy's ``executemany``.

    ``checked`` promises that every value already has its column's Python type (``str`` for
    text, ``float`` or ``int`` for numbers, ``bool``, ``int`` keys; dates as ``datetime.date``
    or ISO text): the values then go to the driver as they are (SQLite) or in PostgreSQL's
    binary COPY format, which the server reads faster. Ingestion's converted rows are checked.

    Identifiers are the store's own, quoted by the dialect; values never enter the SQL text.
    """
    if not rows:
        return
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    names = ", ".join(quote(c) for c in columns)
    if dialect.name == "sqlite":
        converters = [(i, _sqlite_value(table.c[c].type)) for i, c in enumerate(columns)]
        plan = [(i, f) for i, f in converters if f is not None]
        if checked:  # dates may still come as date objects: ISO text is what SQLAlchemy stores
            plan = [(i, f) for i, f in plan if isinstance(table.c[columns[i]].type, sa.Date)]
            plan = [  # `in` walks the column in C
                (i, f) for i, f in plan if dt.date in map(type, map(operator.itemgetter(i), rows))
            ]
        if plan:
            converted = []
            for row in rows:
                values = list(row)
                for i, f in plan:
                    values[i] = f(values[i])
                converted.append(tuple(values))
            rows = converted
        marks = ", ".join("?" for _ in columns)
        raw = connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {target} ({names}) VALUES ({marks})", rows)
        finally:
            cursor.close()
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        assert raw is not None
        types = _pg_binary_types(table, columns) if checked else None
        if types is None:
            with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        dates = [i for i, t in enumerate(types) if t == "date"]
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(types)
            write = copy.write_row
            if not dates:
                for row in rows:
                    write(row)
            else:
                for row in rows:
                    if any(type(row[i]) is str for i in dates):
                        values = list(row)
                        for i in dates:
                            values[i] = _pg_date(values[i])
                        row = values
                    write(row)
    elif dialect.name == "duckdb":
        _duckdb_copy(connection, target, names, table, columns, rows)
    else:
        keys = list(columns)
        connection.execute(table.insert(), [dict(zip(keys, row, strict=True)) for row in rows])


_DUCKDB_NULL = "\\N"


def _duckdb_copy(
    connection: sa.Connection,
    target: str,
    names: str,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    import csv
    import json
    import os
    import tempfile

    json_columns = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)]
    fd, path = tempfile.mkstemp(prefix="riskengine-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            for row in rows:
                values = [_DUCKDB_NULL if v is None else v for v in row]
                for i in json_columns:
                    if row[i] is not None:
                        values[i] = json.dumps(row[i])
                writer.writerow(values)
        literal = path.replace("'", "''")
        options = f"FORMAT CSV, HEADER false, NULL '{_DUCKDB_NULL}'"
        connection.exec_driver_sql(f"COPY {target} ({names}) FROM '{literal}' ({options})")
    finally:
        os.unlink(path)


def _columns(tables: StoreTables, scope: str) -> dict[str, str]:
    """Catalogue name (``declarant.id``) → column name for one scope."""
    prefix = scope + "."
    return {
        path[len(prefix) :]: column
        for path, column in tables.field_columns.items()
        if path.startswith(prefix)
    }


def write_declarations(
    connection: sa.Connection,
    declarations: Sequence[Declaration],
    tables: StoreTables = TABLES,
    batch: int | None = None,
) -> WriteResult:
    """Store declarations with their goods items; ids already stored are skipped.

    Each declaration needs ``header["id"]`` and ``header["date"]``; fields the store has no column
    for are ignored. Within ``declarations`` an id should appear once (the first one wins).
    """
    header_columns = _columns(tables, "declaration")
    item_columns = _columns(tables, "item")
    header_names = list(header_columns)
    item_names = list(item_columns)
    records = [
        (
            d.header["id"],
            [d.header.get(n) for n in header_names],
            [[item.get(n) for n in item_names] for item in d.items],
        )
        for d in declarations
    ]
    return write_declaration_values(
        connection, list(header_columns.values()), list(item_columns.values()), records, tables,
        batch,
    )  # fmt: skip


DeclarationValues = tuple[str, Sequence[Any], Sequence[Sequence[Any]]]


def write_declaration_values(
    connection: sa.Connection,
    header_columns: Sequence[str],
    item_columns: Sequence[str],
    records: Sequence[DeclarationValues],
    tables: StoreTables = TABLES,
    batch: int | None = None,
    *,
    checked: bool = False,
) -> WriteResult:
    """The bulk path behind :func:`write_declarations`: each record is ``(id, header values in
    the order of header_columns, [item values in the order of item_columns, ...])``.

    Items are numbered 1, 2, ... in the order given. Ids already stored are skipped.
    ``checked``: the values have their columns' Python types (see :func:`insert_rows`).
    """
    ids = [r[0] for r in records]
    stored = declaration_keys(connection, ids, tables)
    skipped: list[str] = []
    fresh: Sequence[DeclarationValues] = records
    if stored or len(set(ids)) != len(ids):
        fresh = []
        seen: set[str] = set()
        for record in records:
            ident = record[0]
            if ident in stored or ident in seen:
                skipped.append(ident)
                continue
            seen.add(ident)
            fresh.append(record)
    if not fresh:
        return WriteResult(0, tuple(skipped))
    first = allocate_keys(connection, tables.declarations, len(fresh))
    keys = range(first, first + len(fresh))
    header_rows = [(pk, *header, batch) for pk, (_, header, _) in zip(keys, fresh, strict=True)]
    item_rows = [
        (pk, number, *item, batch)
        for pk, (_, _, items) in zip(keys, fresh, strict=True)
        for number, item in enumerate(items, start=1)
    ]
    insert_rows(
        connection, tables.declarations, ["pk", *header_columns, "ingest_batch"], header_rows,
        checked=checked,
    )  # fmt: skip
    insert_rows(
        connection, tables.items, ["decl_pk", "item_no", *item_columns, "ingest_batch"], item_rows,
        checked=checked,
    )  # fmt: skip
    return WriteResult(len(fresh), tuple(skipped))


def write_outcomes(
    connection: sa.Connection,
    outcomes: Sequence[OutcomeRecord],
    tables: StoreTables = TABLES,
    batch: int | None = None,
    *,
    replace: bool = False,
) -> WriteResult:
    """Store clearance outcomes. A declaration that already has one is skipped (or, with
    ``replace``, gets the new one); an unknown declaration id is reported, not stored."""
    keys = declaration_keys(connection, (o.declaration_id for o in outcomes), tables)
    o_table, r_table = tables.outcomes, tables.outcome_reasons
    present: set[int] = set()
    pks = list(keys.values())
    for start in range(0, len(pks), _LOOKUP_CHUNK):
        chunk = pks[start : start + _LOOKUP_CHUNK]
        present.update(
            connection.execute(sa.select(o_table.c.decl_pk).where(o_table.c.decl_pk.in_(chunk)))
            .scalars()
            .all()
        )
    unknown: list[str] = []
    skipped: list[str] = []
    rows: list[tuple[Any, ...]] = []
    reason_rows: list[tuple[Any, ...]] = []
    time_rows: list[tuple[Any, ...]] = []
    replaced: list[int] = []
    done: set[int] = set()
    for outcome in outcomes:
        pk = keys.get(outcome.declaration_id)
        if pk is None:
            unknown.append(outcome.declaration_id)
            continue
        if pk in done or (pk in present and not replace):
            skipped.append(outcome.declaration_id)
            continue
        if pk in present:
            replaced.append(pk)
        done.add(pk)
        rows.append((pk, outcome.completed, outcome.date, batch))
        if outcome.lodged_at is not None or outcome.released_at is not None:
            time_rows.append((pk, outcome.lodged_at, outcome.released_at))
        for code in dict.fromkeys(outcome.reasons):
            reason_rows.append((pk, code))
    for start in range(0, len(replaced), _LOOKUP_CHUNK):
        chunk = replaced[start : start + _LOOKUP_CHUNK]
        connection.execute(r_table.delete().where(r_table.c.decl_pk.in_(chunk)))
        connection.execute(o_table.delete().where(o_table.c.decl_pk.in_(chunk)))
        t_table = tables.release_times
        connection.execute(t_table.delete().where(t_table.c.decl_pk.in_(chunk)))
    insert_rows(connection, o_table, ["decl_pk", "completed", "date", "ingest_batch"], rows)
    insert_rows(
        connection, tables.release_times, ["decl_pk", "lodged_at", "released_at"], time_rows
    )
    insert_rows(connection, r_table, ["decl_pk", "reason_code"], reason_rows)
    _history_changed(connection, [row[0] for row in rows])
    return WriteResult(len(rows), tuple(skipped), tuple(unknown))


_CONTROL_COLUMNS = (
    "pk",
    "decl_pk",
    "procedure",
    "profile_key",
    "random_control",
    "violation_found",
    "revenue",
    "date",
    "ingest_batch",
)


def write_controls(
    connection: sa.Connection,
    controls: Sequence[ControlRecord],
    tables: StoreTables = TABLES,
    batch: int | None = None,
) -> WriteResult:
    """Store control results; one already stored (same declaration, procedure and date) is
    skipped, an unknown declaration id is reported."""
    keys = declaration_keys(connection, (c.declaration_id for c in controls), tables)
    table = tables.control_results
    present: set[tuple[int, str, dt.date]] = set()
    pks = list(dict.fromkeys(keys.values()))
    for start in range(0, len(pks), _LOOKUP_CHUNK):
        chunk = pks[start : start + _LOOKUP_CHUNK]
        query = sa.select(table.c.decl_pk, table.c.procedure, table.c.date).where(
            table.c.decl_pk.in_(chunk)
        )
        present.update((pk, proc, date) for pk, proc, date in connection.execute(query))
    unknown: list[str] = []
    skipped: list[str] = []
    rows: list[list[Any]] = []
    for control in controls:
        pk = keys.get(control.declaration_id)
        if pk is None:
            unknown.append(control.declaration_id)
            continue
        natural = (pk, control.procedure, control.date)
        if natural in present:
            skipped.append(control.declaration_id)
            continue
        present.add(natural)
        rows.append(
            [
                None,
                pk,
                control.procedure,
                control.profile_key,
                control.random_control,
                control.violation_found,
                control.revenue,
                control.date,
                batch,
            ]
        )
    if rows:
        first = allocate_keys(connection, table, len(rows))
        for offset, row in enumerate(rows):
            row[0] = first + offset
    insert_rows(connection, table, _CONTROL_COLUMNS, [tuple(r) for r in rows])
    _history_changed(connection, [row[1] for row in rows])
    return WriteResult(len(rows), tuple(skipped), tuple(unknown))


def _history_changed(connection: sa.Connection, decl_pks: list[int]) -> None:
    """Tell this process's history caches which declarations got new events
    (:mod:`riskengine.store.history.changes`; other processes learn it through PostgreSQL's
    notifications)."""
    if decl_pks:
        from riskengine.store.history.changes import history_changed

        history_changed(connection, decl_pks)


def _known(result: WriteResult, declaration_id: str) -> None:
    if result.unknown:
        raise StoreError(f"no declaration {declaration_id!r} in the store")


def write_outcome(
    connection: sa.Connection,
    declaration_id: str,
    completed: bool,
    date: dt.date,
    reasons: Sequence[str] = (),
    tables: StoreTables = TABLES,
) -> int:
    """Store (or replace) one declaration's outcome; returns the declaration's key."""
    record = OutcomeRecord(declaration_id, completed, date, tuple(reasons))
    _known(write_outcomes(connection, [record], tables, replace=True), declaration_id)
    return declaration_keys(connection, [declaration_id], tables)[declaration_id]


def write_control(
    connection: sa.Connection,
    declaration_id: str,
    *,
    procedure: str,
    date: dt.date,
    violation_found: bool,
    profile_key: str | None = None,
    random_control: bool = False,
    revenue: Decimal | None = None,
    tables: StoreTables = TABLES,
) -> int:
    """Store one control result; returns the declaration's key."""
    record = ControlRecord(
        declaration_id, procedure, date, violation_found, profile_key, random_control, revenue
    )
    _known(write_controls(connection, [record], tables), declaration_id)
    return declaration_keys(connection, [declaration_id], tables)[declaration_id]
