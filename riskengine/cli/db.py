"""``riskengine db init|upgrade|current``: create and migrate the SQL store."""

from __future__ import annotations

import sys

import click

from riskengine.catalogue import catalogue_with
from riskengine.cli.common import catalogue_option, shown_url, store_url_option
from riskengine.store import migrate

__all__ = ["db"]


@click.group()
def db() -> None:
    """Create and migrate the SQL store."""


@db.command("init")
@store_url_option
@catalogue_option
def db_init(url: str | None, catalogue_path: str | None) -> None:
    """Create the store's tables (or bring an existing store up to date)."""
    status = migrate.init(url, catalogue_with(catalogue_path))
    click.echo(f"store {shown_url(url)} is at schema revision {status.revision} (head)")


@db.command("upgrade")
@store_url_option
@catalogue_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, catalogue_path: str | None, revision: str) -> None:
    """Run new schema revisions and add columns for new catalogue fields."""
    status = migrate.upgrade(url, catalogue_with(catalogue_path), revision)
    click.echo(f"store {shown_url(url)} is at schema revision {status.revision}")


@db.command("current")
@store_url_option
@catalogue_option
def db_current(url: str | None, catalogue_path: str | None) -> None:
    """Show the store's schema revision and whether it is up to date."""
    from riskengine.store.engine import connect, database_errors

    engine = connect(url)
    try:
        with database_errors(engine), engine.connect() as connection:
            status = migrate.status(connection, catalogue_with(catalogue_path))
    finally:
        engine.dispose()
    if status.revision is None:
        click.echo(f"store {shown_url(url)} has no riskengine schema: run `riskengine db init`")
        sys.exit(1)
    state = "up to date" if status.up_to_date else "needs `riskengine db upgrade`"
    click.echo(f"store {shown_url(url)}: revision {status.revision}, head {status.head}, {state}")
    if status.missing_columns:
        click.echo("fields without a column: " + ", ".join(status.missing_columns))
    if not status.up_to_date:
        sys.exit(1)
