"""Bring your own tables: a :class:`StoreSource` over a customs service's existing schema.

:func:`build_source` checks a :class:`~riskengine.ingest.mapping.ByoMapping` against the database
(every table and column must exist; a misspelt name gets a "did you mean") and builds one
``SELECT`` per mapped table that renames the user's columns to the store's canonical names.
History and backtests then run on those selectables exactly as on the store's own tables; the
data is never copied. Identifiers come from the mapping file only, are checked against the
reflected schema, and are quoted by the dialect: no SQL text is assembled from strings.
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Any

import sqlalchemy as sa

from riskengine.byo.mapping import ByoMapping, ByoTable, ColumnRef, section_line, system_schema
from riskengine.catalogue import Catalogue, FieldType
from riskengine.mapfile import MappingError, line_of
from riskengine.store import reflect
from riskengine.store.engine import permission_denied
from riskengine.store.schema import column_name
from riskengine.store.source import StoreSource

__all__ = ["build_source", "load_source"]

_SECTION_NAMES = {
    "declarations": "declarations",
    "items": "items",
    "outcomes": "outcomes",
    "outcome_reasons": "outcome_reasons",
    "controls": "control_results",
}


def _fail(mapping: ByoMapping, reason: str, key: str) -> MappingError:
    section, _, rest = key.partition(".")
    if rest.startswith("fields."):
        look = rest[len("fields.") :]  # the catalogue path, written as a key in the file
        line = line_of(mapping.text, look) if mapping.text else None
    else:
        line = section_line(mapping.text, section, rest)
    return MappingError(reason, file=mapping.file, line=line, key=key)


def _where(spec: ByoTable, schema: str | None) -> str:
    return f"{schema}.{spec.table}" if schema else spec.table


def _schema_read(connection: sa.Connection, mapping: ByoMapping, spec: ByoTable) -> str | None:
    """The schema ``spec``'s table is read from: the mapping's; without one, on PostgreSQL, the
    schema the unqualified name resolves to (``pg_catalog`` comes first in every search path,
    and the name is read qualified with it from then on). Never a system schema."""
    schema = spec.schema
    if schema is None and connection.dialect.name == "postgresql":
        schema = connection.execute(
            sa.text(
                "SELECT n.nspname FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(:name))"
            ),
            {"name": spec.table},
        ).scalar()
    if schema is not None and system_schema(schema):
        raise _fail(
            mapping,
            f"{spec.table!r} is in the system schema {schema!r}: a mapping reads only your own "
            "tables, in the schemas it names",
            f"{spec.section}.table",
        )
    return schema


def _table(connection: sa.Connection, mapping: ByoMapping, spec: ByoTable) -> sa.Table:
    schema = _schema_read(connection, mapping, spec)
    found = reflect.reflected_table(connection, spec.table, schema)
    if found is None:
        raise _fail(
            mapping,
            f"the database has no table or view {_where(spec, spec.schema)!r}",
            f"{spec.section}.table",
        )
    return found


def _probe(
    connection: sa.Connection, mapping: ByoMapping, spec: ByoTable, query: sa.Select[Any]
) -> None:
    """Read no row of the mapped columns, so that a refused read is a mapping error now (with
    the file and line) rather than a database error in the middle of a backtest."""
    nested = connection.dialect.name == "postgresql"  # a failed statement ends the transaction
    try:
        with connection.begin_nested() if nested else contextlib.nullcontext():
            connection.execute(query.limit(0)).close()
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        where = _where(spec, spec.schema)
        if permission_denied(exc):
            message = (
                f"permission denied: the database user may not read {where!r} (grant it SELECT "
                f"on the table and USAGE on its schema): {reason}"
            )
        else:
            message = f"cannot read {where!r}: {reason}"
        raise _fail(mapping, message, f"{spec.section}.table") from None


def _column(mapping: ByoMapping, table: sa.Table, name: str, key: str) -> sa.ColumnElement[Any]:
    if name in table.c:
        return table.c[name]
    close = difflib.get_close_matches(name, list(table.c.keys()), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise _fail(mapping, f"{table.fullname} has no column {name!r}{hint}", key)


def _boolean(
    mapping: ByoMapping, table: sa.Table, ref: ColumnRef, key: str
) -> sa.ColumnElement[Any]:
    column = _column(mapping, table, ref.column, key)
    if ref.true_values:
        return column.in_(list(ref.true_values))
    if ref.false_values:
        return sa.and_(column.is_not(None), column.not_in(list(ref.false_values)))
    return column


_DATE_TYPES = (sa.Date, sa.DateTime, sa.String)


def _check_type(
    mapping: ByoMapping, column: sa.ColumnElement[Any], kind: FieldType, key: str
) -> None:
    """Refuse what cannot work: a date field over a number column, a number over text..."""
    found = column.type
    if kind is FieldType.DATE and not isinstance(found, _DATE_TYPES):
        raise _fail(mapping, f"a date field needs a date column, {column} is {found}", key)
    if kind is FieldType.NUMBER and isinstance(found, sa.String | sa.Date):
        raise _fail(mapping, f"a number field needs a numeric column, {column} is {found}", key)


def build_source(
    mapping: ByoMapping, connection: sa.Connection, catalogue: Catalogue
) -> StoreSource:
    """Check ``mapping`` against the database on ``connection`` and build the source."""
    selectables: dict[str, sa.Subquery | None] = dict.fromkeys(_SECTION_NAMES.values())
    field_columns: dict[str, str] = {}
    for section, spec in mapping.tables.items():
        table = _table(connection, mapping, spec)
        labelled: list[sa.ColumnElement[Any]] = []
        roles = {
            "declarations": {"key": "pk"},
            "items": {"declaration": "decl_pk", "number": "item_no"},
            "outcomes": {"declaration": "decl_pk", "completed": "completed", "date": "date"},
            "outcome_reasons": {"declaration": "decl_pk", "reason": "reason_code"},
            "controls": {
                "declaration": "decl_pk", "procedure": "procedure", "date": "date",
                "violation_found": "violation_found", "profile": "profile_key",
                "random": "random_control", "revenue": "revenue",
            },
        }[section]  # fmt: skip
        for role, canonical in roles.items():
            ref = spec.roles.get(role)
            key = f"{section}.{role}"
            if ref is None:
                defaults = {
                    "profile_key": sa.null(),
                    "random_control": sa.false(),
                    "revenue": sa.null(),
                }
                labelled.append(defaults[canonical].label(canonical))
                continue
            if role in ("completed", "violation_found", "random"):
                labelled.append(_boolean(mapping, table, ref, key).label(canonical))
            else:
                column = _column(mapping, table, ref.column, key)
                if role == "date":
                    _check_type(mapping, column, FieldType.DATE, key)
                labelled.append(column.label(canonical))
        for path, name in spec.fields.items():
            key = f"{section}.fields.{path}"
            column = _column(mapping, table, name, key)
            field = catalogue.get(path)
            if field is not None:
                _check_type(mapping, column, field.type, key)
            canonical = column_name(path)
            labelled.append(column.label(canonical))
            field_columns[path] = canonical
        query = sa.select(*labelled)
        _probe(connection, mapping, spec, query)
        selectables[_SECTION_NAMES[section]] = query.subquery(_SECTION_NAMES[section])
    declarations = selectables["declarations"]
    items = selectables["items"]
    assert declarations is not None and items is not None
    where = mapping.file or "the mapping"
    return StoreSource(
        name=f"the tables mapped by {where}",
        declarations=declarations,
        items=items,
        field_columns=field_columns,
        outcomes=selectables["outcomes"],
        outcome_reasons=selectables["outcome_reasons"],
        control_results=selectables["control_results"],
    )


def load_source(
    connection: sa.Connection, path: str, catalogue: Catalogue | None = None
) -> StoreSource:
    """Read a bring-your-own-tables mapping file and build its source on ``connection``."""
    from riskengine.byo.mapping import load_byo_mapping
    from riskengine.catalogue import default_catalogue

    catalogue = catalogue or default_catalogue()
    return build_source(load_byo_mapping(path, catalogue=catalogue), connection, catalogue)
