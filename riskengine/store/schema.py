"""The store's tables (SQLAlchemy Core): declarations, items, outcomes, controls, runs, registry
(the registry's own tables are in :mod:`riskengine.store.registry_schema`).

Header and item columns are generated from the field catalogue: ``declaration.declarant.id``
becomes the column ``declarant_id`` of ``declarations``, ``item.hs_code`` the column ``hs_code``
of ``items``. :data:`TABLES` holds the tables for the built-in catalogue (built when this module
is imported); :func:`build_tables` builds them for a user-extended catalogue.

Keys are explicit integers chosen by the writer (``max(pk) + 1`` inside the writing transaction),
never SERIAL/IDENTITY: DuckDB's SQLAlchemy dialect has no SERIAL type, and one scheme everywhere
keeps the backends alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue
from riskengine.diagnostics import RiskEngineError
from riskengine.store.decision_schema import decision_log_table
from riskengine.store.registry_schema import registry_tables

__all__ = [
    "CATALOGUE_TABLE",
    "FIXED_COLUMNS",
    "INDEXED_FIELDS",
    "TABLES",
    "VERSION_TABLE",
    "SchemaError",
    "StoreTables",
    "build_tables",
    "column_name",
    "column_type",
    "history_index",
    "metadata",
    "text_type",
]

#: Alembic's version table; named so it never clashes with a host application's own Alembic.
VERSION_TABLE = "riskengine_schema_version"
#: The catalogue the store was initialised with, one row per version (revision r0002).
CATALOGUE_TABLE = "riskengine_catalogue"


class SchemaError(RiskEngineError):
    """A catalogue cannot be turned into store columns (name clash, reserved name)."""


def text_type() -> sa.types.TypeEngine[Any]:
    """Text compared by code point: ``COLLATE "C"`` on PostgreSQL; SQLite (BINARY) and DuckDB
    compare by code point already."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


_TYPES: dict[FieldType, type[sa.types.TypeEngine[Any]]] = {
    FieldType.NUMBER: sa.Double,
    FieldType.DATE: sa.Date,
    FieldType.BOOLEAN: sa.Boolean,
}


def column_type(field: Field) -> sa.types.TypeEngine[Any]:
    """The column type of a catalogue field: number → DOUBLE, date → DATE, boolean → BOOLEAN,
    string and code → TEXT (``COLLATE "C"`` on PostgreSQL)."""
    kind = _TYPES.get(field.type)
    if kind is None:
        return text_type()
    return kind()


def column_name(field: Field | str) -> str:
    """The column of a field: its path without the scope, dots turned into underscores."""
    name = field.name if isinstance(field, Field) else field.partition(".")[2]
    return name.replace(".", "_")


#: Columns the store adds to the catalogue's: a catalogue field may not map onto them.
FIXED_COLUMNS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "declaration": frozenset({"pk", "ingest_batch"}),
        "item": frozenset({"decl_pk", "item_no", "ingest_batch"}),
    }
)

#: Fields indexed for history lookups (the subjects profiles use) and date ranges; a field
#: missing from the catalogue is skipped. Every index slows ingestion down a little: add one for
#: another subject field with a migration of your own (docs/store.md).
INDEXED_FIELDS: tuple[str, ...] = (
    "declaration.date",
    "declaration.declarant.id",
    "declaration.importer.id",
    "item.hs_code",
)


def history_index(path: str, column: str) -> tuple[str, str, tuple[str, ...]]:
    """The index of an :data:`INDEXED_FIELDS` field: (name, table, columns).

    ``declaration.date`` gets a plain index. A subject field gets its column **and the key that
    joins its rows to the events** (``(declarant_id, pk)`` on ``declarations``, ``(hs_code,
    decl_pk)`` on ``items``; revision r0005): a single history lookup then finds the subject's
    declarations in the index alone and probes the events' ``(decl_pk, flag, date)`` indexes
    with them, never reading a declaration row it does not need (docs/store.md#indexes).
    """
    table = "declarations" if path.startswith("declaration.") else "items"
    if path == "declaration.date":
        return f"ix_{table}_{column}", table, (column,)
    key = "pk" if table == "declarations" else "decl_pk"
    return f"ix_{table}_{column}_{key}", table, (column, key)


#: Constraint and index names, the same on every backend (revisions use the same names).
NAMING_CONVENTION: Mapping[str, str] = MappingProxyType(
    {
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

#: Fields every store needs, whatever the catalogue: the declaration's key and its date.
REQUIRED_FIELDS: tuple[str, ...] = ("declaration.id", "declaration.date")


@attrs.frozen
class StoreTables:
    """The store's tables for one catalogue.

    ``field_columns`` maps a catalogue path (``declaration.declarant.id``) to its column name
    (``declarant_id``) in ``declarations`` or ``items``.
    """

    catalogue: Catalogue
    metadata: sa.MetaData
    declarations: sa.Table
    items: sa.Table
    outcomes: sa.Table
    outcome_reasons: sa.Table
    control_results: sa.Table
    release_times: sa.Table
    scoring_results: sa.Table
    backtest_runs: sa.Table
    ingest_files: sa.Table
    ingest_batches: sa.Table
    profiles: sa.Table
    profile_editions: sa.Table
    audit_log: sa.Table
    catalogues: sa.Table
    decision_log: sa.Table
    field_columns: Mapping[str, str]

    def column(self, path: str) -> sa.Column[Any]:
        """The column of a catalogue field, in ``declarations`` or ``items``."""
        name = self.field_columns.get(path)
        if name is None:
            raise SchemaError(f"the store has no column for the field {path!r}")
        table = self.declarations if path.startswith("declaration.") else self.items
        return table.c[name]


def _field_columns(catalogue: Catalogue) -> dict[str, str]:
    columns: dict[str, str] = {}
    taken: dict[tuple[str, str], str] = {}
    for field in catalogue:
        name = column_name(field)
        if name in FIXED_COLUMNS[field.scope]:
            raise SchemaError(
                f"field {field.path!r} would use the column {name!r}, which the store reserves"
            )
        other = taken.get((field.scope, name))
        if other is not None:
            raise SchemaError(
                f"fields {other!r} and {field.path!r} would both use the column {name!r}"
            )
        taken[(field.scope, name)] = field.path
        columns[field.path] = name
    for path in REQUIRED_FIELDS:
        if path not in columns:
            raise SchemaError(f"the catalogue has no field {path!r}, which the store needs")
    return columns


def _catalogue_columns(catalogue: Catalogue, scope: str) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = []
    for field in catalogue.scope_fields(scope):
        name = column_name(field)
        required = field.path in REQUIRED_FIELDS
        columns.append(
            sa.Column(
                name,
                column_type(field),
                nullable=not required,
                unique=field.path == "declaration.id",
                comment=field.path,
            )
        )
    return columns


def _key(name: str = "pk") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, primary_key=True, autoincrement=False)


@functools.lru_cache(maxsize=8)
def build_tables(catalogue: Catalogue | None = None) -> StoreTables:
    """The store's tables for ``catalogue`` (the built-in one by default), in a new MetaData."""
    catalogue = catalogue or default_catalogue()
    field_columns = _field_columns(catalogue)
    md = sa.MetaData(naming_convention=dict(NAMING_CONVENTION))

    ingest_files = sa.Table(
        "ingest_files",
        md,
        _key(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("head_sha256", sa.String(64), nullable=False),
        sa.Column("mapping_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows_committed", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("records_added", sa.BigInteger, nullable=False),
        sa.Column("records_skipped", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    ingest_batches = sa.Table(
        "ingest_batches",
        md,
        _key(),
        sa.Column("file_pk", sa.BigInteger, sa.ForeignKey("ingest_files.pk"), nullable=False),
        sa.Column("batch_no", sa.Integer, nullable=False),
        sa.Column("first_row", sa.BigInteger, nullable=False),
        sa.Column("last_row", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("records_added", sa.BigInteger, nullable=False),
        sa.Column("committed_at", sa.DateTime, nullable=False),
    )

    declarations = sa.Table(
        "declarations",
        md,
        _key(),
        *_catalogue_columns(catalogue, "declaration"),
        sa.Column("ingest_batch", sa.BigInteger),
        comment="Declaration headers: one column per catalogue header field.",
    )
    items = sa.Table(
        "items",
        md,
        sa.Column(
            "decl_pk",
            sa.BigInteger,
            sa.ForeignKey("declarations.pk"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("item_no", sa.Integer, primary_key=True, autoincrement=False),
        *_catalogue_columns(catalogue, "item"),
        sa.Column("ingest_batch", sa.BigInteger),
        comment="Goods items: one column per catalogue item field; item_no counts from 1.",
    )
    outcomes = sa.Table(
        "clearance_outcomes",
        md,
        sa.Column(
            "decl_pk",
            sa.BigInteger,
            sa.ForeignKey("declarations.pk"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("ingest_batch", sa.BigInteger),
        comment="How each clearance ended: completed, or not (reasons in outcome_reasons).",
    )
    outcome_reasons = sa.Table(
        "outcome_reasons",
        md,
        sa.Column(
            "decl_pk",
            sa.BigInteger,
            sa.ForeignKey("clearance_outcomes.decl_pk"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("reason_code", sa.String(8), primary_key=True),
        comment="Non-completion reasons, appendix 3 codes ('0201'); several per outcome.",
    )
    control_results = sa.Table(
        "control_results",
        md,
        _key(),
        sa.Column("decl_pk", sa.BigInteger, sa.ForeignKey("declarations.pk"), nullable=False),
        sa.Column("procedure", sa.String(16), nullable=False),
        sa.Column("profile_key", sa.Text),
        sa.Column("random_control", sa.Boolean, nullable=False),
        sa.Column("violation_found", sa.Boolean, nullable=False),
        sa.Column("revenue", sa.Numeric(18, 2)),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("ingest_batch", sa.BigInteger),
        sa.UniqueConstraint("decl_pk", "procedure", "date", name="uq_control_results_natural"),
        comment="Controls carried out: which procedure, ordered by which profile (or at random).",
    )
    release_times = sa.Table(  # revision r0008
        "release_times",
        md,
        sa.Column(
            "decl_pk",
            sa.BigInteger,
            sa.ForeignKey("declarations.pk"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("lodged_at", sa.DateTime),
        sa.Column("released_at", sa.DateTime),
        comment="When each declaration was lodged and released (the release-time KPI); written "
        "with its clearance outcome.",
    )
    backtest_runs = sa.Table(
        "backtest_runs",
        md,
        _key(),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("engine", sa.String(40), nullable=False),
        sa.Column("parameters", sa.JSON),
        sa.Column("profile_hashes", sa.JSON),
        sa.Column("results", sa.JSON),
    )
    scoring_results = sa.Table(
        "scoring_results",
        md,
        _key(),
        sa.Column("run_pk", sa.BigInteger, sa.ForeignKey("backtest_runs.pk")),
        sa.Column("decl_pk", sa.BigInteger, sa.ForeignKey("declarations.pk"), nullable=False),
        sa.Column("profile_key", sa.Text, nullable=False),
        sa.Column("profile_sha256", sa.String(64)),
        sa.Column("degree", sa.Double, nullable=False),
        sa.Column("items", sa.JSON),
        sa.Column("controls", sa.JSON),
        sa.Column("scored_at", sa.DateTime, nullable=False),
    )
    registry = registry_tables(md)
    catalogues = sa.Table(
        CATALOGUE_TABLE,
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        comment="The field catalogue the store was initialised with (the fields added to or "
        "replacing the built-in ones, as JSON); the highest version is in force.",
    )

    decision_log = decision_log_table(md)

    for path in INDEXED_FIELDS:
        name = field_columns.get(path)
        if name is None:
            continue
        index_name, table_name, columns = history_index(path, name)
        table = declarations if table_name == "declarations" else items
        sa.Index(index_name, *(table.c[c] for c in columns))
    sa.Index("ix_clearance_outcomes_date", outcomes.c.date)
    # the window of one declaration's events, read from the index alone (revision r0005)
    sa.Index(
        "ix_clearance_outcomes_decl_pk_completed_date",
        outcomes.c.decl_pk,
        outcomes.c.completed,
        outcomes.c.date,
    )
    sa.Index(
        "ix_control_results_decl_pk_violation_found_date",
        control_results.c.decl_pk,
        control_results.c.violation_found,
        control_results.c.date,
    )
    sa.Index("ix_control_results_date", control_results.c.date)
    sa.Index("ix_scoring_results_run_pk", scoring_results.c.run_pk)

    return StoreTables(
        catalogue=catalogue,
        metadata=md,
        declarations=declarations,
        items=items,
        outcomes=outcomes,
        outcome_reasons=outcome_reasons,
        control_results=control_results,
        release_times=release_times,
        scoring_results=scoring_results,
        backtest_runs=backtest_runs,
        ingest_files=ingest_files,
        ingest_batches=ingest_batches,
        profiles=registry["profiles"],
        profile_editions=registry["profile_editions"],
        audit_log=registry["audit_log"],
        catalogues=catalogues,
        decision_log=decision_log,
        field_columns=MappingProxyType(field_columns),
    )


#: The tables for the built-in catalogue.
TABLES: StoreTables = build_tables()
#: Their MetaData (what Alembic compares the migrated database with).
metadata: sa.MetaData = TABLES.metadata
