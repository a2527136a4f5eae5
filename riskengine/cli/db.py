"""``riskengine db init|upgrade|current|analyze``: create, migrate and maintain the SQL store."""

from __future__ import annotations

import sys

import click

from riskengine.catalogue import catalogue_with
from riskengine.cli.common import (
    catalogue_option,
    catalogue_option_recorded,
    shown_url,
    store_url_option,
)
from riskengine.store import migrate

__all__ = ["db"]


@click.group()
def db() -> None:
    """Create, migrate and maintain the SQL store."""


@db.command("init")
@store_url_option
@catalogue_option_recorded
def db_init(url: str | None, catalogue_path: str | None) -> None:
    """Create the store's tables (or bring an existing store up to date).

    With --catalogue the store records that catalogue: later commands use it without
    --catalogue. An existing store keeps its catalogue (change it with db upgrade --catalogue).
    """
    catalogue = catalogue_with(catalogue_path) if catalogue_path else None
    status = migrate.init(url, catalogue, source=catalogue_path)
    click.echo(f"store {shown_url(url)} is at schema revision {status.revision} (head)")


@db.command("upgrade")
@store_url_option
@catalogue_option_recorded
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, catalogue_path: str | None, revision: str) -> None:
    """Run new schema revisions and add columns for new catalogue fields.

    With --catalogue that catalogue becomes the store's (a new version of it is recorded).
    """
    catalogue = catalogue_with(catalogue_path) if catalogue_path else None
    status = migrate.upgrade(url, catalogue, revision, source=catalogue_path)
    click.echo(f"store {shown_url(url)} is at schema revision {status.revision}")


@db.command("current")
@store_url_option
@catalogue_option
def db_current(url: str | None, catalogue_path: str | None) -> None:
    """Show the store's schema revision, its catalogue and whether it is up to date."""
    from riskengine.store.access import NOT_INITIALISED, file_is_absent
    from riskengine.store.catalogue import catalogue_in_force, read_catalogue
    from riskengine.store.engine import StoreError, connect, database_errors

    given = catalogue_with(catalogue_path) if catalogue_path else None
    if file_is_absent(url):
        raise StoreError(NOT_INITIALISED.format(url=shown_url(url)))
    engine = connect(url)
    try:
        with database_errors(engine), engine.connect() as connection:
            revision = migrate.current_revision(connection)
            if revision is None:
                raise StoreError(NOT_INITIALISED.format(url=shown_url(url)))
            stored = read_catalogue(connection)
            catalogue = catalogue_in_force(connection, given, catalogue_path)
            status = migrate.status(connection, catalogue)
    finally:
        engine.dispose()
    state = "up to date" if status.up_to_date else "needs `riskengine db upgrade`"
    click.echo(f"store {shown_url(url)}: revision {status.revision}, head {status.head}, {state}")
    if stored is not None:
        click.echo(f"catalogue: {stored.describe()}, {len(stored.catalogue)} fields")
    if status.missing_columns:
        click.echo("fields without a column: " + ", ".join(status.missing_columns))
    if not status.up_to_date:
        sys.exit(1)


@db.command("analyze")
@store_url_option
def db_analyze(url: str | None) -> None:
    """Refresh the planner statistics of the store's tables (after loading data by other means).

    ingest and demo-data do it themselves. On SQLite there is nothing to do: its planner runs
    backtests faster without statistics.
    """
    from riskengine.store.access import open_existing
    from riskengine.store.maintenance import analyze, gathers_statistics

    engine = open_existing(url)
    try:
        if not gathers_statistics(engine):
            click.echo(
                f"store {shown_url(url)}: nothing to do (SQLite plans backtests better without "
                "statistics; docs/store.md#planner-statistics)"
            )
            return
        seconds = analyze(engine)
    finally:
        engine.dispose()
    from riskengine.render.words import duration

    click.echo(f"store {shown_url(url)}: statistics refreshed in {duration(seconds)}")
