"""Schema migrations: Alembic revisions shipped in the package, and catalogue column sync.

Two layers keep a store's schema current:

* **Alembic revisions** (``riskengine/store/migrations/versions``) create and change the store's
  own tables and columns (keys, outcomes, controls, runs, registry). They never depend on the
  catalogue, so a revision always produces the same tables.
* **Catalogue sync** adds a nullable column for every catalogue field that has none yet (and the
  history indexes of :data:`~riskengine.store.schema.INDEXED_FIELDS`). It runs after the
  revisions on ``db init`` and ``db upgrade``, with the built-in catalogue or a user-extended one
  (``--catalogue``). It only adds; a column whose type no longer fits its field is reported.

Both run programmatically (``script_location`` points into the package): no ``alembic.ini``.
The catalogue used is recorded in the store (:mod:`riskengine.store.catalogue`): a function given
no catalogue uses the recorded one, so ``--catalogue`` is given once, to ``db init``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory

from riskengine.catalogue import Catalogue, default_catalogue
from riskengine.store import reflect
from riskengine.store.access import NOT_INITIALISED, file_is_absent, shown_url
from riskengine.store.catalogue import catalogue_in_force, read_catalogue, record_catalogue
from riskengine.store.engine import StoreError, connect, database_errors
from riskengine.store.schema import (
    INDEXED_FIELDS,
    VERSION_TABLE,
    build_tables,
    column_type,
    history_index,
)

__all__ = [
    "SchemaStatus",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "init",
    "status",
    "sync_catalogue",
    "upgrade",
]

SCRIPT_LOCATION = "riskengine.store:migrations"


class DuckDBImpl(DefaultImpl):
    """Alembic's DDL implementation for DuckDB (duckdb-engine ships none)."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for the shipped revisions; ``connection`` is what ``env.py`` uses."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest shipped revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or ``None`` when it has no riskengine schema."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@attrs.frozen
class SchemaStatus:
    """Where a database stands: its revision, the head, and catalogue fields without columns."""

    revision: str | None
    head: str
    missing_columns: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head and not self.missing_columns


def status(connection: sa.Connection, catalogue: Catalogue | None = None) -> SchemaStatus:
    """The schema status of the store on ``connection`` (with the store's recorded catalogue
    unless ``catalogue`` is given)."""
    revision = current_revision(connection)
    missing: tuple[str, ...] = ()
    if revision is not None:
        if catalogue is None:
            catalogue = catalogue_in_force(connection, None)
        missing = tuple(path for path, _ in _missing_columns(connection, catalogue))
    return SchemaStatus(revision=revision, head=head_revision(), missing_columns=missing)


def _missing_columns(
    connection: sa.Connection, catalogue: Catalogue | None
) -> list[tuple[str, sa.Column[Any]]]:
    tables = build_tables(catalogue or default_catalogue())
    present = {
        table.name: set(reflect.columns(connection, table.name))
        for table in (tables.declarations, tables.items)
    }
    missing: list[tuple[str, sa.Column[Any]]] = []
    for path, name in tables.field_columns.items():
        table = tables.declarations if path.startswith("declaration.") else tables.items
        if name not in present[table.name]:
            missing.append((path, table.c[name]))
    return missing


def sync_catalogue(connection: sa.Connection, catalogue: Catalogue | None = None) -> list[str]:
    """Add a column for each catalogue field that has none, and the missing history indexes.

    Returns the paths of the fields that got a column. Existing columns are never changed or
    dropped: a field removed from the catalogue keeps its column.
    """
    catalogue = catalogue or default_catalogue()
    tables = build_tables(catalogue)
    missing = _missing_columns(connection, catalogue)
    operations = Operations(
        MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    )
    for _path, column in missing:
        field = catalogue.get(_path)
        assert field is not None
        operations.add_column(
            column.table.name, sa.Column(column.name, column_type(field), comment=field.path)
        )
    for path in INDEXED_FIELDS:
        name = tables.field_columns.get(path)
        if name is None:
            continue
        index_name, table_name, index_columns = history_index(path, name)
        if index_name not in reflect.index_names(connection, table_name):
            operations.create_index(index_name, table_name, list(index_columns))
    return [path for path, _ in missing]


@contextmanager
def _connection(url: str | None) -> Iterator[sa.Connection]:
    engine = connect(url)
    try:
        with database_errors(engine), engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def upgrade_connection(
    connection: sa.Connection, catalogue: Catalogue | None = None, revision: str = "head"
) -> list[str]:
    """Run the shipped revisions up to ``revision`` on ``connection``, then sync the catalogue
    (``None``: the store's recorded catalogue, else the built-in one)."""
    command.upgrade(alembic_config(connection), revision)
    if catalogue is None:
        catalogue = catalogue_in_force(connection, None) if revision == "head" else None
    return sync_catalogue(connection, catalogue)


def init(
    url: str | None = None, catalogue: Catalogue | None = None, *, source: str | None = None
) -> SchemaStatus:
    """Create the store's schema at ``url`` (or bring it up to date if it exists) and record
    ``catalogue`` (read from the file ``source``) as the store's.

    A store that already records another catalogue is refused with a
    :class:`~riskengine.store.catalogue.CatalogueMismatch`: changing it is ``upgrade``'s.
    Without ``catalogue`` an existing store keeps its recorded one, a new store gets the
    built-in one.
    """
    with _connection(url) as connection:
        revision = current_revision(connection)
        fresh = revision is None
        if revision == head_revision():  # refuse another catalogue before changing anything
            catalogue = catalogue_in_force(connection, catalogue, source)
        upgrade_connection(connection, catalogue)
        if fresh or read_catalogue(connection) is None:
            record_catalogue(connection, catalogue or default_catalogue(), source)
        else:
            catalogue = catalogue_in_force(connection, catalogue, source)
        return status(connection, catalogue)


def upgrade(
    url: str | None = None,
    catalogue: Catalogue | None = None,
    revision: str = "head",
    *,
    source: str | None = None,
) -> SchemaStatus:
    """Upgrade the store at ``url`` to ``revision`` and add columns for new catalogue fields.

    With ``catalogue`` (read from ``source``), that catalogue becomes the store's: recorded as
    a new version when it differs from the one in force. Without, the recorded one is used.
    """
    if file_is_absent(url):  # opening it would leave an empty file behind
        raise StoreError(NOT_INITIALISED.format(url=shown_url(url)))
    with _connection(url) as connection:
        if current_revision(connection) is None:
            raise StoreError(NOT_INITIALISED.format(url=shown_url(url)))
        if catalogue is not None:
            _refuse_type_changes(connection, catalogue, source)
        upgrade_connection(connection, catalogue, revision)
        if catalogue is not None and revision == "head":
            record_catalogue(connection, catalogue, source)
        return status(connection, catalogue)


def _refuse_type_changes(
    connection: sa.Connection, catalogue: Catalogue, source: str | None
) -> None:
    """A new catalogue may add fields, not change the type of one the store has a column for
    (the column keeps its type: a number field over a text column could not be written)."""
    stored = read_catalogue(connection) if current_revision(connection) == head_revision() else None
    if stored is None:
        return
    changed = []
    for field in catalogue:
        before = stored.catalogue.get(field.path)
        if before is not None and not field.type.comparable_with(before.type):
            changed.append(f"{field.path} ({before.type} in the store, {field.type} in the file)")
    if changed:
        raise StoreError(
            f"{source or 'the catalogue'} changes the type of "
            + ", ".join(changed)
            + ": a field's column keeps its type, so give the field of the new type a new path"
        )


def ensure_schema(connection: sa.Connection, catalogue: Catalogue | None = None) -> None:
    """Create the schema in an empty database; refuse a database at an older revision.

    Writers (ingest, demo data) call this, so a first run needs no ``db init``; a new store
    records ``catalogue`` (the built-in one when ``None``) as its own.
    """
    revision = current_revision(connection)
    if revision is None:
        upgrade_connection(connection, catalogue or default_catalogue())
        record_catalogue(connection, catalogue or default_catalogue())
        return
    head = head_revision()
    if revision != head:
        raise StoreError(
            f"the store is at schema revision {revision}, this riskengine needs {head}: "
            "run `riskengine db upgrade`"
        )
    if catalogue is None:
        catalogue = catalogue_in_force(connection, None)
    missing = [path for path, _ in _missing_columns(connection, catalogue)]
    if missing:
        raise StoreError(
            "the store has no column for " + ", ".join(missing) + ": run `riskengine db upgrade`"
            " (with --catalogue FILE to make your catalogue the store's)"
        )
