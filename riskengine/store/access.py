"""Opening a store that must already exist, and the catalogue in force in it.

Commands that read the store (``backtest``, ``score --db``, ``db current``, ``db upgrade``) open it
with :func:`open_existing`: a store that was never initialised is a :class:`StoreError` saying
"has no riskengine tables: run `riskengine db init`", with no SQL shown and nothing created (a
SQLite or DuckDB file that does not exist is not opened, so no empty file is left behind).
Writers (``ingest``, ``demo-data``) create the schema themselves; they ask
:func:`store_catalogue` for the catalogue without creating anything either.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from riskengine.catalogue import Catalogue
from riskengine.store.catalogue import catalogue_in_force
from riskengine.store.engine import StoreError, connect, database_errors, resolve_url

__all__ = [
    "NOT_INITIALISED",
    "file_is_absent",
    "open_existing",
    "require_schema",
    "shown_url",
    "store_catalogue",
]

#: What a store without riskengine tables is told (``{url}``: the URL, password hidden).
NOT_INITIALISED = "the store {url} has no riskengine tables: run `riskengine db init`"


def shown_url(url: str | sa.URL | None) -> str:
    """The store's URL as shown in messages (password hidden)."""
    if not isinstance(url, sa.URL):
        url = make_url(resolve_url(url))
    return url.render_as_string(hide_password=True)


def file_is_absent(url: str | None) -> bool:
    """Whether ``url`` names a SQLite or DuckDB file that does not exist (opening it would create
    an empty one)."""
    parsed = make_url(resolve_url(url))
    if parsed.get_backend_name() not in ("sqlite", "duckdb"):
        return False
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not os.path.exists(database)


def require_schema(connection: sa.Connection) -> None:
    """A :class:`StoreError` unless the store on ``connection`` is at the newest revision.

    Tables created without the migrations (``build_tables().metadata.create_all``, as an
    application embedding the store's tables may do) have no revision: they are used as they are.
    """
    from riskengine.store import reflect
    from riskengine.store.migrate import current_revision, head_revision

    revision = current_revision(connection)
    if revision is None:
        if reflect.has_table(connection, "declarations"):
            return
        raise StoreError(NOT_INITIALISED.format(url=shown_url(connection.engine.url)))
    head = head_revision()
    if revision != head:
        raise StoreError(
            f"the store {shown_url(connection.engine.url)} is at schema revision {revision}, this "
            f"riskengine needs {head}: run `riskengine db upgrade`"
        )


def open_existing(url: str | None = None, **engine_options: Any) -> Engine:
    """An engine on the initialised store at ``url``; a :class:`StoreError` when it is
    unreachable, was never initialised (nothing is created) or needs ``riskengine db upgrade``."""
    if file_is_absent(url):
        raise StoreError(NOT_INITIALISED.format(url=shown_url(make_url(resolve_url(url)))))
    engine = connect(url, **engine_options)
    try:
        with database_errors(engine), engine.connect() as connection:
            require_schema(connection)
    except BaseException:
        engine.dispose()
        raise
    return engine


def store_catalogue(
    engine: Engine | None, given: Catalogue | None, source: str | None = None
) -> Catalogue:
    """The catalogue in force for the store on ``engine`` (see
    :func:`~riskengine.store.catalogue.catalogue_in_force`); ``None`` or an engine on a store
    without riskengine tables gives ``given`` or the built-in catalogue."""
    if engine is None or file_is_absent(engine.url.render_as_string(hide_password=False)):
        return catalogue_in_force(None, given, source)
    from riskengine.store.migrate import current_revision

    with database_errors(engine), engine.connect() as connection:
        if current_revision(connection) is None:
            return catalogue_in_force(None, given, source)
        return catalogue_in_force(connection, given, source)
