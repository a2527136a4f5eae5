"""Bring-your-own-tables mappings: which of a user's tables and columns stand in for the store's.

A mapping is a TOML file; ``docs/byo-tables.md`` describes it with examples. Errors name the
file, the line of the offending key when it can be found, and the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from riskengine.catalogue import Catalogue, default_catalogue
from riskengine.mapfile import MappingError, line_of, load_toml, read_text, suggest

__all__ = [
    "BYO_SECTIONS",
    "ByoMapping",
    "ByoTable",
    "ColumnRef",
    "MappingError",
    "load_byo_mapping",
    "parse_byo_mapping",
    "section_line",
    "system_schema",
]

#: The roles each section of a bring-your-own-tables mapping gives (role → canonical column).
BYO_SECTIONS: dict[str, dict[str, str]] = {
    "declarations": {"key": "pk"},
    "items": {"declaration": "decl_pk", "number": "item_no"},
    "outcomes": {"declaration": "decl_pk", "completed": "completed", "date": "date"},
    "outcome_reasons": {"declaration": "decl_pk", "reason": "reason_code"},
    "controls": {
        "declaration": "decl_pk",
        "procedure": "procedure",
        "date": "date",
        "violation_found": "violation_found",
        "profile": "profile_key",
        "random": "random_control",
        "revenue": "revenue",
    },
}
_BYO_REQUIRED: dict[str, tuple[str, ...]] = {
    "declarations": ("table", "key"),
    "items": ("table", "declaration", "number"),
    "outcomes": ("table", "declaration", "completed", "date"),
    "outcome_reasons": ("table", "declaration", "reason"),
    "controls": ("table", "declaration", "procedure", "date", "violation_found"),
}
_BOOLEAN_ROLES = {"completed", "violation_found", "random"}

#: Schemas that hold a database's own catalogue, never a customs service's data: PostgreSQL
#: (``pg_catalog``, ``pg_toast``, ``pg_temp_N``: every ``pg_`` schema is reserved), the SQL
#: standard's ``information_schema`` (PostgreSQL, DuckDB), DuckDB's ``system`` database.
SYSTEM_SCHEMAS = frozenset({"information_schema", "system"})
SYSTEM_SCHEMA_PREFIXES = ("pg_", "system.")
#: Table names of the system catalogues, which an unqualified name would find: PostgreSQL's
#: ``pg_authid``, ``pg_stat_activity`` (``pg_catalog`` is searched first), SQLite's
#: ``sqlite_master``/``sqlite_schema`` (SQLite reserves ``sqlite_``), DuckDB's ``duckdb_tables``,
#: ``sqlite_master`` and ``pragma_database_list`` views.
SYSTEM_TABLE_PREFIXES = ("pg_", "sqlite_", "duckdb_", "pragma_")


def section_line(text: str, section: str, key: str) -> int | None:
    """The line of ``key`` inside ``[section]`` (the same key appears in several sections)."""
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.strip("[] ") == section
            continue
        if inside and stripped.split("=")[0].strip().strip("\"'") == key:
            return number
    return None


def system_schema(name: str) -> bool:
    """Whether ``name`` is a schema of the database's own catalogue (see :data:`SYSTEM_SCHEMAS`)."""
    folded = name.strip().lower()
    return folded in SYSTEM_SCHEMAS or folded.startswith(SYSTEM_SCHEMA_PREFIXES)


def _system_problem(table: str, schema: str | None) -> tuple[str, str] | None:
    """(key, reason) when the mapping names a system schema or catalogue table."""
    if schema is not None and system_schema(schema):
        return "schema", (
            f"{schema!r} is a system schema: a mapping reads only your own tables, in the "
            "schemas it names"
        )
    if table.strip().lower().startswith(SYSTEM_TABLE_PREFIXES):
        prefixes = ", ".join(f"{p}…" for p in SYSTEM_TABLE_PREFIXES)
        return "table", (
            f"{table!r} is a name of the database's system catalogue ({prefixes}): a mapping "
            "reads only your own tables"
        )
    return None


@attrs.frozen
class ColumnRef:
    """A column of the user's table, or for a boolean role a test of it: the column is true when
    its value is one of ``true_values`` (or, with ``false_values``, none of them)."""

    column: str
    true_values: tuple[Any, ...] = ()
    false_values: tuple[Any, ...] = ()


@attrs.frozen
class ByoTable:
    """One mapped table: where it is, its role columns, and (for declarations and items) which
    catalogue field each of its columns holds."""

    section: str
    table: str
    schema: str | None
    roles: Mapping[str, ColumnRef]
    fields: Mapping[str, str]


@attrs.frozen
class ByoMapping:
    """A parsed bring-your-own-tables mapping; :meth:`source` checks it against a database and
    builds the :class:`~riskengine.store.source.StoreSource` that queries run on."""

    tables: Mapping[str, ByoTable]
    file: str | None = None
    text: str = ""

    def source(self, connection: Any, catalogue: Catalogue | None = None) -> Any:
        """Selectables over the user's tables with canonical names, after checking that every
        table and column exists (SQLAlchemy's inspector / DuckDB's catalogue). Identifiers come
        from the mapping only and are quoted by the dialect; nothing is concatenated into SQL."""
        from riskengine.byo.source import build_source

        return build_source(self, connection, catalogue or default_catalogue())


def _column_ref(value: Any, role: str, fail: Callable[[str], MappingError]) -> ColumnRef:
    if isinstance(value, str):
        return ColumnRef(value)
    if not isinstance(value, dict) or not isinstance(value.get("column"), str):
        raise fail('write a column name, or { column = "C", true_values = [...] }')
    unknown = set(value) - {"column", "true_values", "false_values"}
    if unknown:
        raise fail(f"unknown option {sorted(unknown)[0]!r}")
    if role not in _BOOLEAN_ROLES and len(value) > 1:
        raise fail("true_values and false_values apply to boolean roles only")
    trues = value.get("true_values", [])
    falses = value.get("false_values", [])
    if not isinstance(trues, list) or not isinstance(falses, list):
        raise fail("true_values and false_values are lists")
    if trues and falses:
        raise fail("give true_values or false_values, not both")
    return ColumnRef(value["column"], tuple(trues), tuple(falses))


def parse_byo_mapping(
    text: str, source: str = "<mapping>", *, catalogue: Catalogue | None = None
) -> ByoMapping:
    """Parse and check a bring-your-own-tables mapping (TOML); see ``docs/byo-tables.md``."""
    catalogue = catalogue or default_catalogue()

    def fail(reason: str, key: str = "", line_key: str | None = None) -> MappingError:
        look = line_key or (key.rpartition(".")[2] if key else None)
        line = line_of(text, look) if look else None
        return MappingError(reason, file=source, line=line, key=key)

    data = load_toml(text, source)
    for key in data:
        if key not in BYO_SECTIONS:
            raise fail(f"unknown section{suggest(key, list(BYO_SECTIONS))}", key)
    for needed in ("declarations", "items"):
        if needed not in data:
            raise fail(f"the mapping needs a [{needed}] section", needed)
    tables: dict[str, ByoTable] = {}
    for section, spec in data.items():
        if not isinstance(spec, dict):
            raise fail(f"[{section}] must be a table", section)
        roles = BYO_SECTIONS[section]
        allowed = {"table", "schema", "fields", *roles}
        for key in spec:
            if key not in allowed:
                raise fail(f"unknown key{suggest(key, sorted(allowed))}", f"{section}.{key}")
        for key in _BYO_REQUIRED[section]:
            if key not in spec:
                raise fail(f"[{section}] needs {key!r}", section)
        table, schema = spec["table"], spec.get("schema")
        if not isinstance(table, str) or not table:
            raise fail("table must be a name", f"{section}.table")
        if schema is not None and not isinstance(schema, str):
            raise fail("schema must be a name", f"{section}.schema")
        system = _system_problem(table, schema)
        if system is not None:
            key = f"{section}.{system[0]}"
            raise MappingError(
                system[1], file=source, line=section_line(text, section, system[0]), key=key
            )
        found_roles: dict[str, ColumnRef] = {}
        for role in roles:
            if role in spec:
                role_key = f"{section}.{role}"

                def role_fail(reason: str, role_key: str = role_key) -> MappingError:
                    return fail(reason, role_key)

                found_roles[role] = _column_ref(spec[role], role, role_fail)
        fields: dict[str, str] = {}
        raw_fields = spec.get("fields", {})
        if raw_fields and section not in ("declarations", "items"):
            raise fail("only [declarations] and [items] map catalogue fields", f"{section}.fields")
        if not isinstance(raw_fields, dict):
            raise fail("fields must be a table", f"{section}.fields")
        scope = "declaration" if section == "declarations" else "item"
        for path, column in raw_fields.items():
            key = f"{section}.fields.{path}"
            field = catalogue.get(path)
            if field is None:
                hint = catalogue.suggest(path)
                raise fail(
                    "not a catalogue field" + (f"; did you mean {hint!r}?" if hint else ""),
                    key,
                    path,
                )
            if field.scope != scope:
                home = "declarations" if field.scope == "declaration" else "items"
                raise fail(f"{path} is a {field.scope} field: map it in [{home}.fields]", key, path)
            if not isinstance(column, str) or not column:
                raise fail("give the column name", key, path)
            fields[path] = column
        tables[section] = ByoTable(section, table, schema, found_roles, fields)
    declarations = tables["declarations"]
    for path in ("declaration.id", "declaration.date"):
        if path not in declarations.fields:
            raise fail(f"[declarations.fields] must map {path!r}", "declarations.fields")
    if "outcomes" in tables and "outcome_reasons" not in tables:
        raise fail("[outcomes] needs [outcome_reasons] too (history reads both)", "outcomes")
    return ByoMapping(tables=tables, file=source, text=text)


def load_byo_mapping(
    path: str | os.PathLike[str], *, catalogue: Catalogue | None = None
) -> ByoMapping:
    """Read and check a bring-your-own-tables mapping file."""
    source = os.fspath(path)
    text = read_text(source)
    return parse_byo_mapping(text, source, catalogue=catalogue)
